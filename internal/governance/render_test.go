package governance

import (
	"errors"
	"testing"
)

func TestRenderPending(t *testing.T) {
	s := members(t, "a", "b", "c", "d")
	if got, want := RenderPending(s, 5), "no pending proposals at height 5 (4 validators; a change needs power 27 of 40)\n"; got != want {
		t.Fatalf("empty:\n%s", got)
	}
	p := prop(add("e"), 10)
	s, _, _ = mustApply(t, s, proposeTx(t, "a", p), 10)
	s, _, _ = mustApply(t, s, voteTx(t, "c", p.ID()), 11)
	want := "1 pending proposal at height 20 (4 validators; a change needs power 27 of 40)\n" +
		"\n" + p.ID().Short() + "  add member e (validator " + shortKey(pub("e")) + ", power 10)\n" +
		"          id " + p.ID().String() + "\n" +
		"          proposed by a; expires at height 110 (in 90 blocks)\n" +
		"          signed: a, c (power 20 of 27 needed)\n" +
		"          missing: b, d\n"
	if got := RenderPending(s, 20); got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

func TestFind(t *testing.T) {
	s := members(t, "a", "b", "c", "d")
	p := prop(add("e"), 1)
	s, _, _ = mustApply(t, s, proposeTx(t, "a", p), 1)
	if got, err := s.Find(p.ID().Short()); err != nil || got.ID != p.ID() {
		t.Fatalf("Find(short): %v", err)
	}
	if got, err := s.Find("0x" + p.ID().String()); err != nil || got.ID != p.ID() {
		t.Fatalf("Find(0x…): %v", err)
	}
	for _, q := range []string{"", "zz"} {
		if _, err := s.Find(q); !errors.Is(err, ErrUnknownProposal) {
			t.Fatalf("Find(%q): %v", q, err)
		}
	}
	two := &State{Pending: []Pending{{ID: ID{0xab, 1}}, {ID: ID{0xab, 2}}}}
	if _, err := two.Find("ab"); !errors.Is(err, ErrAmbiguous) {
		t.Fatalf("Find(ab): %v", err)
	}
	if got, err := two.Find("ab02"); err != nil || got.ID != (ID{0xab, 2}) {
		t.Fatalf("Find(ab02): %v", err)
	}
	if Height(-1) != 0 || Height(7) != 7 {
		t.Fatal("Height")
	}
}
