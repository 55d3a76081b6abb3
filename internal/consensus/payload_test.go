package consensus

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
)

func TestPayloadRoundTrip(t *testing.T) {
	p := goodPayload(time.Unix(1010, 0), func(_ *types.Header, _ *types.Body, r *[][]byte) {
		*r = [][]byte{{0x01, 0xaa, 0xbb}}
	})
	enc, err := EncodePayload(p)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodePayload(enc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash() != p.Hash() {
		t.Fatalf("hash %s after the round trip, want %s", got.Hash(), p.Hash())
	}
	if len(got.Requests) != 1 || !bytes.Equal(got.Requests[0], p.Requests[0]) {
		t.Fatalf("requests %x, want %x", got.Requests, p.Requests)
	}
	if err := CheckPayload(got, 42, testParent, time.Unix(1010, 0)); err != nil {
		t.Fatalf("decoded payload breaks the rules: %v", err)
	}
	// The Engine API view carries the same block.
	if ed := got.ExecutableData(); ed.BlockHash != p.Hash() || ed.Number != 42 || ed.Withdrawals == nil {
		t.Fatalf("ExecutableData = hash %s number %d withdrawals %v", ed.BlockHash, ed.Number, ed.Withdrawals)
	}
}

func TestDecodePayloadRefuses(t *testing.T) {
	good, err := EncodePayload(goodPayload(time.Unix(1010, 0), nil))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := rlp.EncodeToBytes(goodPayload(time.Unix(1010, 0), nil).Block)
	mustRLP := func(v any) []byte {
		b, err := rlp.EncodeToBytes(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		tx   []byte
	}{
		{"empty", nil},
		{"garbage", []byte("hello, validators")},
		{"truncated", good[:len(good)-3]},
		{"trailing bytes", append(append([]byte(nil), good...), 0x00)},
		{"other format", mustRLP(&wirePayload{Format: 2, Block: block, Requests: [][]byte{}})},
		{"block is not a block", mustRLP(&wirePayload{Format: payloadFormat, Block: []byte{0xc0}, Requests: [][]byte{}})},
		{"empty request entry", mustRLP(&wirePayload{Format: payloadFormat, Block: block, Requests: [][]byte{{0x00}}})},
		{"too large", make([]byte, maxPayloadBytes+1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := DecodePayload(tt.tx); !errors.Is(err, ErrDecode) {
				t.Fatalf("DecodePayload = %v, %v; want ErrDecode", p, err)
			}
		})
	}
}

// FuzzDecodePayload: whatever a proposer puts in a block, decoding never
// panics, and what decodes survives a re-encoding unchanged in meaning.
func FuzzDecodePayload(f *testing.F) {
	good, err := EncodePayload(goodPayload(time.Unix(1010, 0), func(_ *types.Header, _ *types.Body, r *[][]byte) {
		*r = [][]byte{{0x00, 0x01}}
	}))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0xc0})
	f.Add([]byte{0xc3, 0x01, 0x80, 0xc0})
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, tx []byte) {
		p, err := DecodePayload(tx)
		if err != nil {
			if p != nil || !errors.Is(err, ErrDecode) {
				t.Fatalf("DecodePayload = %v, %v: an error must wrap ErrDecode and return no payload", p, err)
			}
			return
		}
		// These must not panic on anything that decoded.
		_ = CheckPayload(p, 42, testParent, time.Unix(1010, 0))
		_ = p.ExecutableData()
		_ = p.BlobHashes()
		_ = p.beaconRoot()
		enc, err := EncodePayload(p)
		if err != nil {
			t.Fatalf("re-encoding a decoded payload: %v", err)
		}
		again, err := DecodePayload(enc)
		if err != nil || again.Hash() != p.Hash() {
			t.Fatalf("re-encoded payload decodes to %v, %v", again, err)
		}
	})
}
