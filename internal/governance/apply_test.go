package governance

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/ed25519"
)

// TestApplyRefusals: every refusal leaves the state exactly as it was.
func TestApplyRefusals(t *testing.T) {
	base := members(t, "a", "b", "c", "d")
	addE := prop(add("e"), 10)
	addEID := addE.ID()
	withAddE := func(t *testing.T) *State {
		s, _, _ := mustApply(t, base, proposeTx(t, "a", addE), 10)
		return s
	}
	passed := func(t *testing.T) *State {
		s := withAddE(t)
		s, _, _ = mustApply(t, s, voteTx(t, "b", addEID), 11)
		s, _, _ = mustApply(t, s, voteTx(t, "c", addEID), 12)
		return s
	}
	forged := func(t *testing.T) []byte {
		tx, _ := DecodeTx(proposeTx(t, "a", addE))
		tx.Signature[0] ^= 1
		b, _ := EncodeTx(tx)
		return b
	}
	// x signs, but the transaction claims a's key.
	borrowedKey := func(t *testing.T) []byte {
		tx, _ := DecodeTx(proposeTx(t, "x", addE))
		tx.Signer = pub("a")
		b, _ := EncodeTx(tx)
		return b
	}
	one := members(t, "a")
	tight, _ := NewState(testChain, base.Members, Config{ProposalTTL: 100, MaxPendingPerMember: 1})

	tests := []struct {
		name  string
		state func(t *testing.T) *State
		tx    func(t *testing.T) []byte
		h     uint64
		want  error
	}{
		{"garbage", nil, func(*testing.T) []byte { return []byte{TxPrefix, 1, 2, 3} }, 10, ErrDecode},
		{"payload byte", nil, func(*testing.T) []byte { return []byte{0xf8, 1} }, 10, ErrDecode},
		{"non-validator proposes", nil, func(t *testing.T) []byte { return proposeTx(t, "x", addE) }, 10, ErrNotValidator},
		{"non-validator votes", withAddE, func(t *testing.T) []byte { return voteTx(t, "x", addEID) }, 11, ErrNotValidator},
		{"forged signature", nil, forged, 10, ErrBadSignature},
		{"signature by another key", nil, borrowedKey, 10, ErrBadSignature},
		{"wrong chain ID", nil, func(t *testing.T) []byte {
			p := addE
			p.ChainID = "consortium-other"
			return proposeTx(t, "a", p)
		}, 10, ErrWrongChain},
		{"vote from another chain", withAddE, func(t *testing.T) []byte {
			tx, _ := SignVote(key("b"), "consortium-other", addEID)
			return tx
		}, 11, ErrWrongChain},
		{"replayed vote", func(t *testing.T) *State {
			s, _, _ := mustApply(t, withAddE(t), voteTx(t, "b", addEID), 11)
			return s
		}, func(t *testing.T) []byte { return voteTx(t, "b", addEID) }, 12, ErrReplayed},
		{"proposer votes again", withAddE, func(t *testing.T) []byte { return voteTx(t, "a", addEID) }, 11, ErrReplayed},
		{"proposal replayed", withAddE, func(t *testing.T) []byte { return proposeTx(t, "a", addE) }, 11, ErrReplayed},
		{"vote for unknown proposal", nil, func(t *testing.T) []byte { return voteTx(t, "b", addEID) }, 10, ErrUnknownProposal},
		{"vote for expired proposal", withAddE, func(t *testing.T) []byte { return voteTx(t, "b", addEID) }, 110, ErrExpired},
		{"vote for expired and dropped proposal", func(t *testing.T) *State {
			s, _ := Expire(withAddE(t), 110)
			return s
		}, func(t *testing.T) []byte { return voteTx(t, "b", addEID) }, 110, ErrUnknownProposal},
		{"expired proposal", nil, func(t *testing.T) []byte { return proposeTx(t, "a", addE) }, 110, ErrExpired},
		{"anchor in the future", nil, func(t *testing.T) []byte { return proposeTx(t, "a", addE) }, 9, ErrFutureAnchor},
		{"vote for a passed proposal", passed, func(t *testing.T) []byte { return voteTx(t, "d", addEID) }, 13, ErrClosed},
		{"passed proposal replayed", passed, func(t *testing.T) []byte { return proposeTx(t, "b", addE) }, 13, ErrClosed},
		{"add existing member", nil, func(t *testing.T) []byte {
			return proposeTx(t, "a", prop(Action{Kind: ActionAdd, Member: "b", PubKey: pub("z"), Power: 10}, 10))
		}, 10, ErrMemberExists},
		{"add existing key", nil, func(t *testing.T) []byte {
			return proposeTx(t, "a", prop(Action{Kind: ActionAdd, Member: "e", PubKey: pub("b"), Power: 10}, 10))
		}, 10, ErrKeyInUse},
		{"remove unknown member", nil, func(t *testing.T) []byte { return proposeTx(t, "a", prop(remove("e"), 10)) }, 10, ErrUnknownMember},
		{"remove last member", func(*testing.T) *State { return one }, func(t *testing.T) []byte {
			return proposeTx(t, "a", prop(remove("a"), 10))
		}, 10, ErrLastMember},
		{"rotate unknown member", nil, func(t *testing.T) []byte { return proposeTx(t, "a", prop(rotate("e", "e2"), 10)) }, 10, ErrUnknownMember},
		{"rotate to the same key", nil, func(t *testing.T) []byte { return proposeTx(t, "a", prop(rotate("b", "b"), 10)) }, 10, ErrSameKey},
		{"rotate to another member's key", nil, func(t *testing.T) []byte {
			return proposeTx(t, "a", prop(rotate("b", "c"), 10))
		}, 10, ErrKeyInUse},
		{"equal change pending", withAddE, func(t *testing.T) []byte { return proposeTx(t, "b", prop(add("e"), 11)) }, 11, ErrDuplicate},
		{"too many pending", func(t *testing.T) *State {
			s, _, _ := mustApply(t, tight, proposeTx(t, "a", addE), 10)
			return s
		}, func(t *testing.T) []byte { return proposeTx(t, "a", prop(remove("d"), 10)) }, 10, ErrTooManyPending},
		{"removed member votes", func(t *testing.T) *State {
			s, _, _ := mustApply(t, base, proposeTx(t, "a", prop(remove("d"), 10)), 10)
			s, _, _ = mustApply(t, s, voteTx(t, "b", prop(remove("d"), 10).ID()), 10)
			s, _, _ = mustApply(t, s, proposeTx(t, "a", addE), 10)
			s, _, _ = mustApply(t, s, voteTx(t, "c", prop(remove("d"), 10).ID()), 10)
			return s
		}, func(t *testing.T) []byte { return voteTx(t, "d", addEID) }, 11, ErrNotValidator},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := base
			if tt.state != nil {
				s = tt.state(t)
			}
			before := s.Marshal()
			n, ev, up, err := Apply(s, tt.tx(t), tt.h)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if n != s || ev != nil || up != nil {
				t.Fatalf("refusal returned a new state %p (was %p), events %v, updates %v", n, s, ev, up)
			}
			if !bytes.Equal(s.Marshal(), before) {
				t.Fatal("refusal changed the state")
			}
		})
	}
}

// TestAddNeedsMoreThanTwoThirds is the bar: with four members of
// equal power, two signatures change nothing, the third adds e, and the
// updates come exactly once.
func TestAddNeedsMoreThanTwoThirds(t *testing.T) {
	s := members(t, "a", "b", "c", "d")
	p := prop(add("e"), 5)
	id := p.ID()
	var all []Event
	steps := []struct {
		tx      []byte
		members int
		updates int
	}{
		{proposeTx(t, "a", p), 4, 0},
		{voteTx(t, "b", id), 4, 0},
		{voteTx(t, "c", id), 5, 1},
	}
	total := 0
	for i, st := range steps {
		var ev []Event
		var up []abci.ValidatorUpdate
		s, ev, up = mustApply(t, s, st.tx, uint64(6+i))
		all = append(all, ev...)
		total += len(up)
		if len(s.Members) != st.members || len(up) != st.updates {
			t.Fatalf("step %d: %d members, %d updates; want %d, %d", i, len(s.Members), len(up), st.members, st.updates)
		}
		if st.updates == 1 && !sameUpdates(up, []abci.ValidatorUpdate{update("e", 10)}) {
			t.Fatalf("updates %v", up)
		}
	}
	if _, _, _, err := Apply(s, voteTx(t, "d", id), 9); !errors.Is(err, ErrClosed) {
		t.Fatalf("the fourth vote: %v, want ErrClosed", err)
	}
	if total != 1 {
		t.Fatalf("%d updates over the sequence, want 1", total)
	}
	kinds := []EventKind{}
	for _, e := range all {
		kinds = append(kinds, e.Kind)
	}
	if want := []EventKind{EventProposed, EventVoted, EventVoted, EventPassed}; !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	if len(s.Pending) != 0 || len(s.Closed) != 1 {
		t.Fatalf("pending %d closed %d", len(s.Pending), len(s.Closed))
	}
	// e is a validator now and may vote on the next change.
	s, _, _ = mustApply(t, s, proposeTx(t, "e", prop(remove("a"), 9)), 9)
	if len(s.Pending) != 1 {
		t.Fatal("e's proposal is not pending")
	}
}

func TestRotate(t *testing.T) {
	s := members(t, "a", "b", "c", "d")
	p := prop(rotate("b", "b2"), 1)
	s, _, _ = mustApply(t, s, proposeTx(t, "b", p), 1)
	s, _, _ = mustApply(t, s, voteTx(t, "a", p.ID()), 1)
	s, _, up := mustApply(t, s, voteTx(t, "c", p.ID()), 2)
	if !sameUpdates(up, []abci.ValidatorUpdate{update("b", 0), update("b2", 10)}) {
		t.Fatalf("updates %v, want b off and b2 at 10", up)
	}
	if m, _ := s.Member("b"); !bytes.Equal(m.PubKey, pub("b2")) || m.Power != 10 {
		t.Fatalf("b is %+v", m)
	}
	next := prop(remove("d"), 2)
	if _, _, _, err := Apply(s, proposeTx(t, "b", next), 2); !errors.Is(err, ErrNotValidator) {
		t.Fatalf("b's old key: %v, want ErrNotValidator", err)
	}
	if _, _, _, err := Apply(s, proposeTx(t, "b2", next), 2); err != nil {
		t.Fatalf("b's new key: %v", err)
	}
}

func TestRemove(t *testing.T) {
	s := members(t, "a", "b", "c", "d")
	rm := prop(remove("d"), 1)
	other := prop(add("e"), 1)
	s, _, _ = mustApply(t, s, proposeTx(t, "d", other), 1) // d's vote on e
	s, _, _ = mustApply(t, s, proposeTx(t, "a", rm), 1)
	s, _, _ = mustApply(t, s, voteTx(t, "b", rm.ID()), 1)
	s, ev, up := mustApply(t, s, voteTx(t, "c", rm.ID()), 1)
	if !sameUpdates(up, []abci.ValidatorUpdate{update("d", 0)}) {
		t.Fatalf("updates %v", up)
	}
	if !slices.Equal(names(s), []string{"a", "b", "c"}) {
		t.Fatalf("members %v", names(s))
	}
	if ev[len(ev)-1].Kind != EventPassed {
		t.Fatalf("events %v", ev)
	}
	// d's vote on e no longer counts: e needs three of a, b, c.
	if p, _ := s.Proposal(other.ID()); len(p.Votes) != 0 {
		t.Fatalf("votes on e after d left: %v", p.Votes)
	}
}

// TestSettle: a pass drops what it makes impossible, and a removal that
// lowers the total lets another proposal pass in the same transaction.
func TestSettle(t *testing.T) {
	s := members(t, "a", "b", "c", "d", "e")
	rmE := prop(remove("e"), 1)
	rotE := prop(rotate("e", "e2"), 1)
	addF := prop(add("f"), 1)
	s, _, _ = mustApply(t, s, proposeTx(t, "e", rotE), 1)
	s, _, _ = mustApply(t, s, proposeTx(t, "a", addF), 1)
	s, _, _ = mustApply(t, s, voteTx(t, "b", addF.ID()), 1)
	s, _, _ = mustApply(t, s, voteTx(t, "c", addF.ID()), 1) // 30 of 50: not yet
	s, _, _ = mustApply(t, s, proposeTx(t, "a", rmE), 1)
	s, _, _ = mustApply(t, s, voteTx(t, "b", rmE.ID()), 1)
	s, _, _ = mustApply(t, s, voteTx(t, "c", rmE.ID()), 1)
	if len(s.Members) != 5 {
		t.Fatal("passed early")
	}
	s, ev, up := mustApply(t, s, voteTx(t, "d", rmE.ID()), 1) // 40 of 50: e leaves; then f has 30 of 40
	kinds := []EventKind{}
	for _, e := range ev {
		kinds = append(kinds, e.Kind)
	}
	if want := []EventKind{EventVoted, EventPassed, EventDropped, EventPassed}; !slices.Equal(kinds, want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	if !sameUpdates(up, []abci.ValidatorUpdate{update("e", 0), update("f", 10)}) {
		t.Fatalf("updates %v", up)
	}
	if len(s.Pending) != 0 || len(s.Closed) != 3 {
		t.Fatalf("pending %d, closed %d", len(s.Pending), len(s.Closed))
	}
}

func TestExpire(t *testing.T) {
	s := members(t, "a", "b", "c", "d")
	p := prop(add("e"), 10)
	s, _, _ = mustApply(t, s, proposeTx(t, "a", p), 10)
	if n, ev := Expire(s, 109); n != s || ev != nil {
		t.Fatal("expired a height early")
	}
	n, ev := Expire(s, 110)
	if len(ev) != 1 || ev[0].Kind != EventExpired || ev[0].ID != p.ID() || len(n.Pending) != 0 {
		t.Fatalf("Expire(110): %v, pending %d", ev, len(n.Pending))
	}
	if len(s.Pending) != 1 {
		t.Fatal("Expire changed its argument")
	}
	// A passed proposal is remembered until its bytes expire, then forgotten.
	s = members(t, "a", "b", "c", "d")
	s, _, _ = mustApply(t, s, proposeTx(t, "a", p), 10)
	s, _, _ = mustApply(t, s, voteTx(t, "b", p.ID()), 10)
	s, _, _ = mustApply(t, s, voteTx(t, "c", p.ID()), 10)
	if n, _ = Expire(s, 109); len(n.Closed) != 1 {
		t.Fatal("closed entry dropped early")
	}
	if n, _ = Expire(s, 110); len(n.Closed) != 0 {
		t.Fatal("closed entry kept after its expiry")
	}
}

// TestDeterminism: the same transactions give the same bytes, however the
// state travelled between them (kept in memory, or marshalled and read
// back as after a restart).
func TestDeterminism(t *testing.T) {
	p1 := prop(add("e"), 3)
	p2 := prop(rotate("a", "a2"), 3)
	txs := [][]byte{
		proposeTx(t, "a", p1), proposeTx(t, "b", p2), voteTx(t, "b", p1.ID()),
		voteTx(t, "x", p1.ID()), // refused
		voteTx(t, "c", p2.ID()), voteTx(t, "c", p1.ID()), voteTx(t, "d", p2.ID()),
		voteTx(t, "e", p2.ID()),
	}
	run := func(restart bool) ([]byte, [32]byte) {
		s := members(t, "a", "b", "c", "d")
		for h, tx := range txs {
			s, _ = Expire(s, uint64(h+3))
			if n, _, _, err := Apply(s, tx, uint64(h+3)); err == nil {
				s = n
			}
			if restart {
				var err error
				if s, err = Unmarshal(s.Marshal()); err != nil {
					t.Fatalf("Unmarshal after tx %d: %v", h, err)
				}
			}
		}
		return s.Marshal(), s.Hash()
	}
	b1, h1 := run(false)
	b2, h2 := run(true)
	if !bytes.Equal(b1, b2) || h1 != h2 {
		t.Fatal("the same transactions gave different states")
	}
	s, err := Unmarshal(b1)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Members) != 5 {
		t.Fatalf("members %v", names(s))
	}
	if m, _ := s.Member("a"); !bytes.Equal(m.PubKey, pub("a2")) {
		t.Fatal("a was not rotated")
	}
	if h := AppHash([]byte{1}, s); bytes.Equal(h, AppHash([]byte{2}, s)) || len(h) != 32 {
		t.Fatal("AppHash ignores the EL hash")
	}
}

func TestDiffOneEntryPerKey(t *testing.T) {
	a := members(t, "a", "b", "c", "d")
	b := members(t, "a", "b", "c", "e")
	b.Members[0].Power = 20
	got := Diff(a, b)
	want := []abci.ValidatorUpdate{update("a", 20), update("d", 0), update("e", 10)}
	if !sameUpdates(got, want) {
		t.Fatalf("Diff %v", got)
	}
	if !slices.IsSortedFunc(got, func(x, y abci.ValidatorUpdate) int { return bytes.Compare(x.PubKeyBytes, y.PubKeyBytes) }) {
		t.Fatal("Diff is not sorted by key")
	}
	if d := Diff(a, a); len(d) != 0 {
		t.Fatalf("Diff of equal states: %v", d)
	}
	_ = ed25519.PubKeySize
}
