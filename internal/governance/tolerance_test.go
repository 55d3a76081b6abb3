package governance

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cometbft/cometbft/crypto/ed25519"
)

func TestTolerance(t *testing.T) {
	tests := []struct {
		powers []int64
		want   int
	}{
		{nil, 0},
		{[]int64{10}, 0},
		{[]int64{10, 10}, 0},
		{[]int64{10, 10, 10}, 0},
		{[]int64{10, 10, 10, 10}, 1},
		{[]int64{10, 10, 10, 10, 10}, 1},
		{[]int64{10, 10, 10, 10, 10, 10}, 1},
		{[]int64{10, 10, 10, 10, 10, 10, 10}, 2},
		{[]int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 3},
		{[]int64{10, 10, 50, 10, 10, 10}, 0}, // losing the big one halts
		{[]int64{10, 10, 10, 10, 1}, 1},      // largest first: one 10, not the 1 and a 10
	}
	for _, tt := range tests {
		if got := Tolerance(tt.powers); got != tt.want {
			t.Errorf("Tolerance(%v) = %d, want %d", tt.powers, got, tt.want)
		}
	}
}

func TestPreview(t *testing.T) {
	keys := func(names ...string) []ed25519.PubKey {
		var out []ed25519.PubKey
		for _, n := range names {
			out = append(out, pub(n))
		}
		return out
	}
	four := members(t, "a", "b", "c", "d")
	tests := []struct {
		name          string
		s             *State
		a             Action
		offline       []ed25519.PubKey
		before, after string
		err           error
		msg           string
	}{
		{"add to four", four, add("e"), nil,
			"4 validators, tolerates 1", "5 validators, tolerates 1", nil, ""},
		{"the 1 → 2 trap", members(t, "a"), add("b"), keys("b"),
			"1 validator, tolerates 0", "2 validators, tolerates 0 (b offline)", ErrWouldHalt,
			"after adding b, 2 of the 2 validators must sign every block, but b is offline and only 1 can: the chain would halt"},
		{"add with one offline and the new one not up", four, add("e"), keys("c", "e"),
			"4 validators, tolerates 1 (c offline)", "5 validators, tolerates 1 (c and e offline)", ErrWouldHalt,
			"after adding e, 4 of the 5 validators must sign every block, but c and e are offline and only 3 can: the chain would halt"},
		{"add with one offline and the new one up", four, add("e"), keys("c"),
			"4 validators, tolerates 1 (c offline)", "5 validators, tolerates 1 (c offline)", nil, ""},
		{"remove the dead member", four, remove("c"), keys("c"),
			"4 validators, tolerates 1 (c offline)", "3 validators, tolerates 0", nil, ""},
		{"remove a live one with two down", four, remove("d"), keys("b", "c"),
			"4 validators, tolerates 1 (b and c offline)", "3 validators, tolerates 0 (b and c offline)", ErrWouldHalt,
			"after removing d, 3 of the 3 validators must sign every block, but b and c are offline and only 1 can: the chain would halt"},
		{"rotate to a key not yet running", four, rotate("b", "b2"), keys("b2"),
			"4 validators, tolerates 1", "4 validators, tolerates 1 (b offline)", nil, ""},
		{"refused change", four, remove("z"), nil, "4 validators, tolerates 1", "0 validators, tolerates 0", ErrUnknownMember, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, after, err := Preview(tt.s, prop(tt.a, 1), tt.offline)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if before.String() != tt.before || after.String() != tt.after {
				t.Fatalf("%q → %q, want %q → %q", before, after, tt.before, tt.after)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Fatalf("message\n %s\nwant\n %s", err, tt.msg)
			}
		})
	}
	// Unequal powers are worded in power.
	s, _ := NewState(testChain, []Member{{Name: "a", PubKey: pub("a"), Power: 30}, {Name: "b", PubKey: pub("b"), Power: 10}}, Config{})
	_, _, err := Preview(s, prop(add("c"), 1), []ed25519.PubKey{pub("a")})
	var he *HaltError
	if !errors.As(err, &he) || he.Need != 34 || he.Online != 20 {
		t.Fatalf("unequal powers: %v", err)
	}
	if want := "after adding c, validators holding 34 of the total power 50 must sign every block, but a is offline and the rest hold 20: the chain would halt"; err.Error() != want {
		t.Fatalf("message %q", err)
	}
}

func TestOffline(t *testing.T) {
	s := members(t, "a", "b", "c", "d")
	got := Offline(s, [][]byte{pub("a").Address(), pub("c").Address(), pub("x").Address()})
	if len(got) != 2 || !bytes.Equal(got[0], pub("b")) || !bytes.Equal(got[1], pub("d")) {
		t.Fatalf("Offline = %v", got)
	}
	_, _, err := Preview(s, prop(add("e"), 1), append(got, pub("e")))
	if !errors.Is(err, ErrWouldHalt) {
		t.Fatalf("two down plus a new one: %v", err)
	}
}
