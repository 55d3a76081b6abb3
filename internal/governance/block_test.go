package governance

import (
	"errors"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
)

func TestBlock(t *testing.T) {
	s := members(t, "a", "b", "c", "d")
	p := prop(add("e"), 1)
	txs := [][]byte{
		proposeTx(t, "a", p), voteTx(t, "b", p.ID()), {TxPrefix, 0},
		voteTx(t, "b", p.ID()), voteTx(t, "c", p.ID()),
	}
	res := Block(s, txs, 2)
	wantCodes := []uint32{0, 0, Code(ErrDecode), Code(ErrReplayed), 0}
	for i, r := range res.TxResults {
		if r.Code != wantCodes[i] {
			t.Errorf("tx %d: code %d (%s), want %d", i, r.Code, r.Log, wantCodes[i])
		}
		if r.Code != 0 && r.Codespace != Codespace {
			t.Errorf("tx %d: codespace %q", i, r.Codespace)
		}
	}
	if len(res.TxResults[4].Events) != 2 { // voted, passed
		t.Errorf("last tx events: %v", res.TxResults[4].Events)
	}
	if !sameUpdates(res.Updates, []abci.ValidatorUpdate{update("e", 10)}) || len(res.State.Members) != 5 {
		t.Fatalf("updates %v, members %v", res.Updates, names(res.State))
	}
	if len(s.Members) != 4 {
		t.Fatal("Block changed its argument")
	}
}

// TestBlockOneUpdatePerKey: b rotates to b2 and is then removed in one
// block. Concatenating the transactions' updates would name b2 twice (and
// CometBFT would refuse the block); the block's Diff names b once.
func TestBlockOneUpdatePerKey(t *testing.T) {
	s := members(t, "a", "b", "c", "d")
	rot, rm := prop(rotate("b", "b2"), 1), prop(remove("b"), 1)
	for _, tx := range [][]byte{proposeTx(t, "a", rot), voteTx(t, "b", rot.ID()), proposeTx(t, "a", rm), voteTx(t, "d", rm.ID())} {
		s, _, _ = mustApply(t, s, tx, 1)
	}
	res := Block(s, [][]byte{voteTx(t, "c", rot.ID()), voteTx(t, "c", rm.ID())}, 2)
	for i, r := range res.TxResults {
		if r.Code != 0 {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	if !sameUpdates(res.Updates, []abci.ValidatorUpdate{update("b", 0)}) {
		t.Fatalf("updates %v, want only b off", res.Updates)
	}
}

func TestBlockExpires(t *testing.T) {
	s := members(t, "a", "b", "c", "d")
	s, _, _ = mustApply(t, s, proposeTx(t, "a", prop(add("e"), 1)), 1)
	res := Block(s, nil, 101)
	if len(res.Events) != 1 || res.Events[0].Kind != EventExpired || len(res.State.Pending) != 0 {
		t.Fatalf("events %v", res.Events)
	}
}

// TestOneToTwo: a single validator's proposal is more than 2/3 of the
// power by itself and passes at once (the chain must refuse nothing the
// members decided; Preview is where the trap is caught).
func TestOneToTwo(t *testing.T) {
	s := members(t, "a")
	_, ev, up := mustApply(t, s, proposeTx(t, "a", prop(add("b"), 1)), 1)
	if len(ev) != 2 || ev[1].Kind != EventPassed || !sameUpdates(up, []abci.ValidatorUpdate{update("b", 10)}) {
		t.Fatalf("events %v, updates %v", ev, up)
	}
}

func TestSelectAndVerify(t *testing.T) {
	s := members(t, "a", "b", "c", "d")
	p := prop(add("e"), 1)
	propose, vote := proposeTx(t, "a", p), voteTx(t, "b", p.ID())
	mempool := [][]byte{vote, propose, {0xf8, 1}, vote, voteTx(t, "x", p.ID()), voteTx(t, "c", p.ID())}
	got := Select(s, mempool, 2, 1<<20)
	// The first vote comes before its proposal and is left out; the
	// second copy applies once the proposal is in.
	if len(got) != 3 || string(got[0]) != string(propose) || string(got[1]) != string(vote) {
		t.Fatalf("Select kept %d transactions", len(got))
	}
	if err := Verify(s, got, 2); err != nil {
		t.Fatal(err)
	}
	if err := Verify(s, mempool, 2); !errors.Is(err, ErrUnknownProposal) {
		t.Fatalf("Verify of the raw mempool: %v", err)
	}
	if got := Select(s, mempool, 2, int64(len(propose))); len(got) != 1 {
		t.Fatalf("Select ignored maxBytes: %d", len(got))
	}
	if err := Check(s, vote, 2); !errors.Is(err, ErrUnknownProposal) {
		t.Fatalf("Check: %v", err)
	}
}

func TestCodes(t *testing.T) {
	seen := map[uint32]bool{}
	for _, e := range codes {
		c := Code(e)
		if c == 0 || seen[c] || ErrorOf(c) != e {
			t.Fatalf("%v: code %d", e, c)
		}
		seen[c] = true
	}
	if Code(nil) != 0 || ErrorOf(0) != nil || ErrorOf(999) != nil {
		t.Fatal("zero or unknown code")
	}
}
