package governance

import (
	"fmt"
	"slices"
	"strings"
)

// RenderPending is what `consortium member proposals` prints: every open
// proposal with the votes so far, the power they hold against what is
// needed, the members who have not signed, and when it expires. height is
// the chain's latest, for the "in N blocks". Members are named, never
// keyed, because operators vote for companies, not for hex.
func RenderPending(s *State, height uint64) string {
	var b strings.Builder
	total := s.TotalPower()
	need := Needed(total)
	if len(s.Pending) == 0 {
		fmt.Fprintf(&b, "no pending proposals at height %d (%d validators; a change needs power %d of %d)\n",
			height, len(s.Members), need, total)
		return b.String()
	}
	fmt.Fprintf(&b, "%d pending proposal%s at height %d (%d validators; a change needs power %d of %d)\n",
		len(s.Pending), plural(len(s.Pending)), height, len(s.Members), need, total)
	for _, p := range s.Pending {
		fmt.Fprintf(&b, "\n%s  %s\n", p.ID.Short(), p.Proposal.Action)
		fmt.Fprintf(&b, "          id %s\n", p.ID)
		fmt.Fprintf(&b, "          proposed by %s; %s\n", p.Proposer, expiry(p.Expires, height))
		var missing []string
		for _, m := range s.Members {
			if !slices.Contains(p.Votes, m.Name) {
				missing = append(missing, m.Name)
			}
		}
		fmt.Fprintf(&b, "          signed: %s (power %d of %d needed)\n", list(p.Votes), s.Tally(p.Votes), need)
		fmt.Fprintf(&b, "          missing: %s\n", list(missing))
	}
	return b.String()
}

func expiry(expires, height uint64) string {
	if expires <= height {
		return fmt.Sprintf("expired at height %d", expires)
	}
	left := expires - height
	unit := "blocks"
	if left == 1 {
		unit = "block"
	}
	return fmt.Sprintf("expires at height %d (in %d %s)", expires, left, unit)
}

func list(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
