package governance

import (
	"bytes"
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/rlp"
)

// busy is a state with every part filled: pending with votes, closed.
func busy(t testing.TB) *State {
	s := members(t, "a", "b", "c", "d")
	p1, p2 := prop(add("e"), 2), prop(remove("d"), 2)
	for _, tx := range [][]byte{
		proposeTx(t, "a", p1), voteTx(t, "b", p1.ID()), voteTx(t, "c", p1.ID()), // passed
		proposeTx(t, "d", p2), voteTx(t, "e", p2.ID()),
	} {
		s, _, _ = mustApply(t, s, tx, 3)
	}
	return s
}

func TestStateRoundTrip(t *testing.T) {
	s := busy(t)
	if len(s.Pending) != 1 || len(s.Closed) != 1 || len(s.Members) != 5 {
		t.Fatalf("fixture: %d pending, %d closed, %d members", len(s.Pending), len(s.Closed), len(s.Members))
	}
	n, err := Unmarshal(s.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if n.Hash() != s.Hash() || !bytes.Equal(n.Marshal(), s.Marshal()) {
		t.Fatal("round trip changed the state")
	}
}

// TestUnmarshalRefuses: each broken invariant is caught on load.
func TestUnmarshalRefuses(t *testing.T) {
	good := busy(t).Marshal()
	mutate := func(mut func(w *wireState)) []byte {
		var w wireState
		if err := rlp.DecodeBytes(good, &w); err != nil {
			t.Fatal(err)
		}
		mut(&w)
		b, _ := rlp.EncodeToBytes(&w)
		return b
	}
	tests := map[string][]byte{
		"empty":              nil,
		"trailing":           append(bytes.Clone(good), 0),
		"version":            mutate(func(w *wireState) { w.Version = 2 }),
		"no TTL":             mutate(func(w *wireState) { w.ProposalTTL = 0 }),
		"no members":         mutate(func(w *wireState) { w.Members = nil; w.Pending = nil }),
		"members unsorted":   mutate(func(w *wireState) { w.Members[0], w.Members[1] = w.Members[1], w.Members[0] }),
		"key twice":          mutate(func(w *wireState) { w.Members[1].PubKey = w.Members[0].PubKey }),
		"power too high":     mutate(func(w *wireState) { w.Members[0].Power = 1 << 62 }),
		"ID mismatch":        mutate(func(w *wireState) { w.Pending[0].ID[0] ^= 1 }),
		"vote by a stranger": mutate(func(w *wireState) { w.Pending[0].Votes = []string{"zz"} }),
		"votes unsorted":     mutate(func(w *wireState) { w.Pending[0].Votes = []string{"e", "d"} }),
		"wrong expiry":       mutate(func(w *wireState) { w.Pending[0].Expires++ }),
		"short closed ID":    mutate(func(w *wireState) { w.Closed[0].ID = w.Closed[0].ID[:3] }),
	}
	for name, b := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := Unmarshal(b); !errors.Is(err, ErrState) {
				t.Fatalf("err = %v, want ErrState", err)
			}
		})
	}
}

// FuzzUnmarshal: a persisted state is read back on start; damage must be
// an error, never a panic, and whatever loads is canonical.
func FuzzUnmarshal(f *testing.F) {
	f.Add(busy(f).Marshal())
	f.Add(members(f, "a").Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Unmarshal(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Marshal(), b) {
			t.Fatal("accepted a non-canonical state")
		}
	})
}
