package governance

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/rlp"
)

func TestTxRoundTrip(t *testing.T) {
	for _, p := range []Proposal{prop(add("e"), 7), prop(remove("c"), 0), prop(rotate("b", "b2"), 1<<40)} {
		enc := proposeTx(t, "a", p)
		if !IsTx(enc) {
			t.Fatal("IsTx false on a governance transaction")
		}
		tx, err := DecodeTx(enc)
		if err != nil {
			t.Fatalf("%v: %v", p.Action, err)
		}
		if tx.ProposalID() != p.ID() || !tx.Proposal.Action.equal(p.Action) {
			t.Fatalf("decoded %+v, want %+v", tx.Proposal, p)
		}
	}
	id := prop(add("e"), 7).ID()
	tx, err := DecodeTx(voteTx(t, "b", id))
	if err != nil || tx.Vote == nil || tx.ProposalID() != id || tx.ChainID() != testChain {
		t.Fatalf("vote: %+v, %v", tx, err)
	}
}

// TestDecodeStrict: each way to bend an encoding is refused.
func TestDecodeStrict(t *testing.T) {
	good := proposeTx(t, "a", prop(add("e"), 7))
	reencode := func(mut func(w *wireTx)) []byte {
		var w wireTx
		if err := rlp.DecodeBytes(good[1:], &w); err != nil {
			t.Fatal(err)
		}
		mut(&w)
		b, _ := rlp.EncodeToBytes(&w)
		return append([]byte{TxPrefix}, b...)
	}
	body := func(mut func(p *wireProposal)) []byte {
		return reencode(func(w *wireTx) {
			var p wireProposal
			_ = rlp.DecodeBytes(w.Body, &p)
			mut(&p)
			w.Body, _ = rlp.EncodeToBytes(&p)
		})
	}
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrDecode},
		{"no prefix", good[1:], ErrDecode},
		{"trailing byte", append(bytes.Clone(good), 0), ErrDecode},
		{"version 2", reencode(func(w *wireTx) { w.Version = 2 }), ErrDecode},
		{"kind 3", reencode(func(w *wireTx) { w.Kind = 3 }), ErrDecode},
		{"short signature", reencode(func(w *wireTx) { w.Signature = w.Signature[:63] }), ErrBadSignature},
		{"short signer", reencode(func(w *wireTx) { w.Signer = w.Signer[:31] }), ErrBadKey},
		{"power 0", body(func(p *wireProposal) { p.Power = 0 }), ErrBadPower},
		{"power too high", body(func(p *wireProposal) { p.Power = 1 << 63 }), ErrBadPower},
		{"bad name", body(func(p *wireProposal) { p.Member = "E" }), ErrBadName},
		{"admin name", body(func(p *wireProposal) { p.Member = "admin" }), ErrBadName},
		{"no chain ID", body(func(p *wireProposal) { p.ChainID = "" }), ErrDecode},
		{"remove with a key", body(func(p *wireProposal) { p.Kind = uint8(ActionRemove); p.Power = 0 }), ErrDecode},
		{"rotate with power", body(func(p *wireProposal) { p.Kind = uint8(ActionRotate) }), ErrDecode},
		{"short key", body(func(p *wireProposal) { p.PubKey = p.PubKey[:5] }), ErrBadKey},
		{"unknown action", body(func(p *wireProposal) { p.Kind = 9 }), ErrDecode},
		{"too big", append([]byte{TxPrefix}, make([]byte, maxTxBytes)...), ErrDecode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeTx(tt.b); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestSignBytesDiffer: a signature binds the chain and the proposal.
func TestSignBytesDiffer(t *testing.T) {
	a, b := prop(add("e"), 7).ID(), prop(add("e"), 8).ID()
	if a == b {
		t.Fatal("the anchor is not part of the ID")
	}
	if bytes.Equal(SignBytes(testChain, a), SignBytes("other", a)) || bytes.Equal(SignBytes(testChain, a), SignBytes(testChain, b)) {
		t.Fatal("sign bytes ignore the chain or the proposal")
	}
	if got, err := ParseID(a.String()); err != nil || got != a {
		t.Fatalf("ParseID: %v %v", got, err)
	}
}

// FuzzDecodeTx: no input panics, and whatever is accepted re-encodes to
// exactly the input (one encoding per transaction).
func FuzzDecodeTx(f *testing.F) {
	f.Add(proposeTx(f, "a", prop(add("e"), 7)))
	f.Add(proposeTx(f, "a", prop(remove("c"), 0)))
	f.Add(proposeTx(f, "b", prop(rotate("b", "b2"), 3)))
	f.Add(voteTx(f, "c", prop(add("e"), 7).ID()))
	f.Add([]byte{TxPrefix})
	f.Add([]byte{0xf8, 0x00})
	s := members(f, "a", "b", "c", "d")
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := DecodeTx(b)
		if err != nil {
			return
		}
		again, err := EncodeTx(tx)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %x but re-encodes to %x (%v)", b, again, err)
		}
		// Apply must not panic on anything the decoder lets through.
		before := s.Marshal()
		if n, _, _, err := Apply(s, b, 5); err != nil && (n != s || !bytes.Equal(s.Marshal(), before)) {
			t.Fatal("refusal changed the state")
		}
	})
}
