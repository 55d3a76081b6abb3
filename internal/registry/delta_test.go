package registry

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// applyDelta is what a client does with a delta: remove, then add, as sets.
func applyDelta(held []string, add, remove []string) []string {
	out := []string{}
	for _, e := range held {
		if !slices.Contains(remove, e) {
			out = append(out, e)
		}
	}
	out = append(out, add...)
	slices.Sort(out)
	return out
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

// For every node, the delta from the answer it held to its answer now,
// applied to what it held, gives its answer now, list for list; an answer
// the registry no longer keeps gets no delta.
func TestDeltaAppliedToTheHeldAnswerGivesTheNewOne(t *testing.T) {
	p := newPop(t, "a", "b")
	var all []*pnode
	for _, m := range []string{"a", "b"} {
		for _, role := range []string{"bootnode", "validator", "tx", "tx", "public", "public"} {
			all = append(all, p.add(m, role))
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 6 {
		held := map[string]*PeerAnswer{}
		for _, n := range all {
			held[n.id] = p.answer(n)
		}
		// A few changes: new nodes, a re-signed record on a new IP.
		for range 2 {
			m := []string{"a", "b"}[rng.IntN(2)]
			role := []string{"bootnode", "tx", "public", "validator"}[rng.IntN(4)]
			all = append(all, p.add(m, role))
		}
		x := all[rng.IntN(len(all))]
		p.resign(x, "10.9.9."+string(rune('1'+round)), "")
		for _, n := range all {
			h, ok := held[n.id]
			if !ok {
				continue
			}
			now := p.answer(n)
			d, ok := p.r.Delta(now, h.ETag)
			if now.ETag == h.ETag {
				if ok {
					t.Fatalf("a delta for an unchanged answer")
				}
				continue
			}
			if !ok {
				t.Fatalf("round %d: no delta for %s %s from index %d to %d", round, n.member, n.role, h.Index, now.Index)
			}
			if d.ETag != now.ETag || d.Index != now.Index || d.Since > h.Index {
				t.Fatalf("delta tagged %s at %d since %d; want %s at %d since at most %d", d.ETag, d.Index, d.Since, now.ETag, now.Index, h.Index)
			}
			for _, c := range []struct {
				name        string
				l           List
				add, remove []string
			}{{"static", StaticList, d.StaticAdd, d.StaticRemove}, {"bootnodes", BootnodeList, d.BootnodesAdd, d.BootnodesRemove}, {"consensus", ConsensusList, d.ConsensusAdd, d.ConsensusRemove}} {
				got, want := applyDelta(h.Strings(c.l), c.add, c.remove), sorted(now.Strings(c.l))
				if !slices.Equal(got, want) {
					t.Fatalf("round %d, %s %s, %s: held + delta = %v, want %v", round, n.member, n.role, c.name, got, want)
				}
			}
		}
	}
	// Further back than the registry keeps: no delta, the full answer.
	n := all[2]
	old := p.answer(n)
	for range pastAnswers + 1 {
		p.add(n.member, "tx")
		p.answer(n)
	}
	if _, ok := p.r.Delta(p.answer(n), old.ETag); ok {
		t.Fatal("a delta from an answer older than the registry keeps")
	}
	if _, ok := p.r.Delta(p.answer(n), `"not-a-tag"`); ok {
		t.Fatal("a delta from an unknown tag")
	}
}
