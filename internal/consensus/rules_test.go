package consensus

import (
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/trie"
)

// testParent is block 41 of a made-up chain, at EL time 1000.
var testParent = Parent{Number: 41, Hash: common.HexToHash("0xaa"), Time: 1000}

// goodPayload builds the payload the rules expect at height 42 on
// testParent with CometBFT block time bt; edit tweaks the header first.
func goodPayload(bt time.Time, edit func(*types.Header, *types.Body, *[][]byte)) *Payload {
	attrs := DeriveAttributes(42, testParent, bt)
	zero := uint64(0)
	h := &types.Header{
		ParentHash:       testParent.Hash,
		Number:           big.NewInt(42),
		Time:             attrs.Timestamp,
		MixDigest:        attrs.PrevRandao,
		ParentBeaconRoot: &attrs.BeaconRoot,
		Difficulty:       new(big.Int),
		GasLimit:         30_000_000,
		BaseFee:          big.NewInt(1_000_000_000),
		BlobGasUsed:      &zero,
		ExcessBlobGas:    &zero,
	}
	body := &types.Body{Withdrawals: []*types.Withdrawal{}}
	requests := [][]byte{}
	if edit != nil {
		edit(h, body, &requests)
	}
	if h.RequestsHash == nil {
		rh := types.CalcRequestsHash(requests)
		h.RequestsHash = &rh
	}
	return &Payload{Block: types.NewBlock(h, body, nil, trie.NewStackTrie(nil)), Requests: requests}
}

func TestDeriveAttributes(t *testing.T) {
	at := func(sec int64) time.Time { return time.Unix(sec, 5e8) }
	tests := []struct {
		name   string
		height int64
		parent Parent
		bt     time.Time
		wantTS uint64
	}{
		{"block time ahead of parent", 42, testParent, at(1010), 1010},
		{"same second as parent: parent+1", 42, testParent, at(1000), 1001},
		{"block time behind parent: parent+1", 42, testParent, at(900), 1001},
		{"zero block time", 1, Parent{}, time.Time{}, 1},
		{"genesis parent at time 0", 1, Parent{Hash: common.HexToHash("0x01")}, at(1_700_000_000), 1_700_000_000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := DeriveAttributes(tt.height, tt.parent, tt.bt)
			if got.Timestamp != tt.wantTS {
				t.Errorf("timestamp %d, want %d", got.Timestamp, tt.wantTS)
			}
			if got.PrevRandao == (common.Hash{}) || got.BeaconRoot == (common.Hash{}) || got.PrevRandao == got.BeaconRoot {
				t.Errorf("derived values must be set and distinct: %+v", got)
			}
			// Deterministic: every validator derives the same.
			if again := DeriveAttributes(tt.height, tt.parent, tt.bt); again != got {
				t.Errorf("not deterministic: %+v then %+v", got, again)
			}
		})
	}
	// The derived values move with the height and the parent.
	a := DeriveAttributes(42, testParent, at(1010))
	if b := DeriveAttributes(43, testParent, at(1010)); b.PrevRandao == a.PrevRandao || b.BeaconRoot == a.BeaconRoot {
		t.Error("height does not change the derived values")
	}
	other := testParent
	other.Hash = common.HexToHash("0xbb")
	if b := DeriveAttributes(42, other, at(1010)); b.PrevRandao == a.PrevRandao || b.BeaconRoot == a.BeaconRoot {
		t.Error("parent hash does not change the derived values")
	}
}

func TestCheckPayload(t *testing.T) {
	bt := time.Unix(1010, 0)
	otherHash := common.HexToHash("0xbeef")
	tests := []struct {
		name   string
		height int64
		parent Parent
		edit   func(*types.Header, *types.Body, *[][]byte)
		err    error
	}{
		{"good", 42, testParent, nil, nil},
		{"good with a request", 42, testParent, func(_ *types.Header, _ *types.Body, r *[][]byte) {
			*r = [][]byte{{0x00, 0x01, 0x02}}
		}, nil},
		{"app not at the parent height", 43, testParent, nil, ErrNotReady},
		{"height zero", 0, Parent{}, nil, ErrNotReady},
		{"number is not the height", 42, testParent, func(h *types.Header, _ *types.Body, _ *[][]byte) { h.Number = big.NewInt(43) }, ErrWrongNumber},
		{"parent is not the last final", 42, testParent, func(h *types.Header, _ *types.Body, _ *[][]byte) { h.ParentHash = otherHash }, ErrWrongParent},
		{"timestamp off by one", 42, testParent, func(h *types.Header, _ *types.Body, _ *[][]byte) { h.Time++ }, ErrWrongTimestamp},
		{"prevRandao chosen by proposer", 42, testParent, func(h *types.Header, _ *types.Body, _ *[][]byte) { h.MixDigest = otherHash }, ErrWrongRandao},
		{"beacon root chosen by proposer", 42, testParent, func(h *types.Header, _ *types.Body, _ *[][]byte) { h.ParentBeaconRoot = &otherHash }, ErrWrongBeaconRoot},
		{"no beacon root", 42, testParent, func(h *types.Header, _ *types.Body, _ *[][]byte) { h.ParentBeaconRoot = nil }, ErrWrongBeaconRoot},
		{"a withdrawal", 42, testParent, func(_ *types.Header, b *types.Body, _ *[][]byte) {
			b.Withdrawals = []*types.Withdrawal{{Index: 1, Amount: 1}}
		}, ErrWithdrawals},
		{"nil withdrawals (pre-Shanghai shape)", 42, testParent, func(_ *types.Header, b *types.Body, _ *[][]byte) { b.Withdrawals = nil }, ErrWithdrawals},
		{"requests hash mismatch", 42, testParent, func(h *types.Header, _ *types.Body, _ *[][]byte) { h.RequestsHash = &otherHash }, ErrRequestsMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := goodPayload(bt, tt.edit)
			err := CheckPayload(p, tt.height, tt.parent, bt)
			if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Fatalf("CheckPayload = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestRefusalReason(t *testing.T) {
	for _, e := range []error{ErrDecode, ErrNotReady, ErrWrongNumber, ErrWrongParent, ErrWrongTimestamp,
		ErrWrongRandao, ErrWrongBeaconRoot, ErrWithdrawals, ErrRequestsMismatch, ErrPayloadStatus, ErrEngine} {
		if r := refusalReason(errors.Join(errors.New("x"), e)); r == "other" {
			t.Errorf("%v has no label", e)
		}
	}
	if r := refusalReason(errors.New("x")); r != "other" {
		t.Errorf("unknown error labelled %q", r)
	}
}
