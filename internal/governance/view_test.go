package governance

import (
	"slices"
	"strings"
	"testing"

	"github.com/cometbft/cometbft/crypto/ed25519"
)

// The view names who signed and who is missing, and previews each change
// with the new key offline; the 1 → 2 trap is flagged, a change the state
// would refuse says why.
func TestNewView(t *testing.T) {
	s := members(t, "a", "b", "c", "d")
	s, _, _ = mustApply(t, s, proposeTx(t, "a", prop(add("e"), 1)), 2)
	s, _, _ = mustApply(t, s, voteTx(t, "b", prop(add("e"), 1).ID()), 3)
	s, _, _ = mustApply(t, s, proposeTx(t, "c", prop(remove("d"), 3)), 4)

	v := NewView(s, 5, []ed25519.PubKey{pub("d")})
	if v.Validators != 4 || v.Total != 40 || v.Needed != 27 || v.Tolerates != 1 || !slices.Equal(v.Offline, []string{"d"}) {
		t.Fatalf("set: %+v", v)
	}
	if v.Summary != "4 validators, tolerates 1 (d offline)" {
		t.Fatalf("summary %q", v.Summary)
	}
	if len(v.Proposals) != 2 {
		t.Fatalf("%d proposals, want 2", len(v.Proposals))
	}
	byKind := map[string]ProposalView{}
	for _, p := range v.Proposals {
		byKind[p.Kind] = p
	}
	addE := byKind["add"]
	if addE.Member != "e" || addE.Proposer != "a" || !slices.Equal(addE.Votes, []string{"a", "b"}) ||
		!slices.Equal(addE.Missing, []string{"c", "d"}) || addE.Power != 20 || addE.Expires != 101 {
		t.Fatalf("add e: %+v", addE)
	}
	// 5 validators, d and the new e offline: 30 of 50 online, 34 needed.
	if addE.Halts == "" || !strings.Contains(addE.After, "5 validators") || addE.Refused != "" {
		t.Fatalf("adding e with d offline halts the chain; view: %+v", addE)
	}
	rmD := byKind["remove"]
	if rmD.Halts != "" || rmD.Refused != "" || rmD.After != "3 validators, tolerates 0" || rmD.Short != rmD.ID[:8] {
		t.Fatalf("remove d: %+v", rmD)
	}

	// Nobody offline: adding e keeps 4 of 5 online, above 2/3.
	if p := NewView(s, 5, nil).Proposals; p[0].Halts != "" && p[1].Halts != "" {
		t.Fatalf("with every validator up no change halts: %+v", p)
	}

	// Removing a member that is no longer there: refused, not previewed.
	s2, _, _ := mustApply(t, members(t, "a", "b", "c", "d", "x"), proposeTx(t, "a", prop(remove("x"), 1)), 2)
	gone := &State{ChainID: s2.ChainID, ProposalTTL: s2.ProposalTTL, MaxPendingPerMember: s2.MaxPendingPerMember,
		Members: s.Members, Pending: s2.Pending}
	if p := NewView(gone, 3, nil).Proposals[0]; p.Refused == "" || p.After != "" {
		t.Fatalf("removing a non-member: %+v", p)
	}

	// An empty state still encodes as lists, not nulls.
	if v := NewView(members(t, "a"), 1, nil); v.Proposals == nil || v.Offline == nil {
		t.Fatalf("nil lists: %+v", v)
	}
}
