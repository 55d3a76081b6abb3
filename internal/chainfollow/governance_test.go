package chainfollow

import (
	"context"
	"testing"

	"github.com/cometbft/cometbft/crypto/ed25519"

	"github.com/consortium/consortium/internal/governance"
)

// withProposal is s with an open proposal by a to add e.
func withProposal(t *testing.T, s *governance.State) *governance.State {
	t.Helper()
	p := governance.Proposal{ChainID: s.ChainID, Anchor: 1, Action: governance.Action{
		Kind: governance.ActionAdd, Member: "e", Power: 10,
		PubKey: ed25519.GenPrivKeyFromSecret([]byte("e")).PubKey().(ed25519.PubKey)}}
	tx, err := governance.SignProposal(ed25519.GenPrivKeyFromSecret([]byte("a")), p)
	if err != nil {
		t.Fatal(err)
	}
	n, _, _, err := governance.Apply(s, tx, 2)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The follower keeps the state the majority agreed on, pending proposals
// included (which do not change the member list), and a lagging majority
// does not take it back to an older one.
func TestPollKeepsGovernanceState(t *testing.T) {
	eps := []*endpoint{newEndpoint(t), newEndpoint(t), newEndpoint(t)}
	var urls []string
	base := state(t, "a", "b", "c", "d")
	for _, e := range eps {
		urls = append(urls, e.srv.URL)
		e.set(answerJSON(base, 10))
	}
	f, err := New(Config{URLs: urls}, &sink{})
	if err != nil {
		t.Fatal(err)
	}
	if s, h := f.Governance(); s != nil || h != 0 {
		t.Fatalf("a state before any poll: %v at %d", s, h)
	}
	ctx := context.Background()
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if s, h := f.Governance(); s == nil || h != 10 || len(s.Pending) != 0 {
		t.Fatalf("after the first poll: %+v at %d", s, h)
	}
	open := withProposal(t, base)
	for _, e := range eps {
		e.set(answerJSON(open, 12))
	}
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	s, h := f.Governance()
	if h != 12 || len(s.Pending) != 1 || s.Pending[0].Proposal.Action.Member != "e" {
		t.Fatalf("a proposal opened at 12 not followed: %+v at %d", s, h)
	}
	// Two endpoints replaying from behind: the same members, no proposal,
	// a lower height. The proposal stays shown.
	eps[0].set(answerJSON(base, 11))
	eps[1].set(answerJSON(base, 11))
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if s, h := f.Governance(); h != 12 || len(s.Pending) != 1 {
		t.Fatalf("a lagging majority took the state back: %d pending at %d", len(s.Pending), h)
	}
}
