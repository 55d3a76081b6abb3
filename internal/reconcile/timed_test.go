package reconcile

import (
	"errors"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

var t0 = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// ages maps names to how long before t0 something began.
type ages map[string]time.Duration

func (a ages) times() map[enode.ID]time.Time {
	if a == nil {
		return nil
	}
	m := map[enode.ID]time.Time{}
	for n, d := range a {
		m[id(n)] = t0.Add(-d)
	}
	return m
}

func agesOf(m map[enode.ID]time.Time) ages {
	out := ages{}
	for i, t := range m {
		out[nameOf[i]] = t0.Sub(t)
	}
	return out
}

func inbound(name string) Peer {
	p := connected(name, true)
	p.Inbound = true
	return p
}

var rules = Rules{ForeignGrace: 2 * time.Second, DepartGrace: 10 * time.Second, DialStagger: time.Second, DialHistory: 35 * time.Second}

// TestTimed pins each time rule at the instants around its bound; no test
// here waits: the clock is an input.
func TestTimed(t *testing.T) {
	tests := []struct {
		name      string
		self      string // default "self" (the highest ID: every dial at once)
		desired   []*enode.Node
		previous  []*enode.Node
		actual    []Peer
		dropped   ages
		wanted    ages
		gone      ages
		dialled   ages
		want      []string
		applied   []string // name@tcp
		recheck   time.Duration
		since     [3]ages // the Since returned: wanted, gone, dialled
		skipSince bool
		lease     time.Duration // Rules.Lease; 0: unknown
	}{
		{
			name:    "a new peer is dialled at once from the higher ID",
			desired: nodes("a"),
			want:    []string{"add-peer a@10.0.0.1:30303 new", "add-trusted a@10.0.0.1:30303 new"},
			applied: []string{"a@30303"},
			since:   [3]ages{{"a": 0}, {}, {}},
		},
		{
			name:    "dial stagger: a new higher-ID peer waits (its trusted flag does not)",
			self:    "a",
			desired: nodes("b"),
			want:    []string{"add-trusted b@10.0.0.2:30303 new"},
			applied: []string{"b@30303"},
			recheck: time.Second,
			since:   [3]ages{{"b": 0}, {}, {}},
		},
		{
			name:    "dial stagger: 1 ns before its end the dial still waits",
			self:    "a",
			desired: nodes("b"),
			wanted:  ages{"b": time.Second - 1},
			want:    []string{"add-trusted b@10.0.0.2:30303 new"},
			applied: []string{"b@30303"},
			recheck: 1,
			since:   [3]ages{{"b": time.Second - 1}, {}, {}},
		},
		{
			name:    "dial stagger: at its end the dial goes out",
			self:    "a",
			desired: nodes("b"),
			wanted:  ages{"b": time.Second},
			want:    []string{"add-peer b@10.0.0.2:30303 new", "add-trusted b@10.0.0.2:30303 new"},
			applied: []string{"b@30303"},
			since:   [3]ages{{"b": time.Second}, {}, {}},
		},
		{
			name:    "dial stagger: not for a peer already connected",
			self:    "a",
			desired: nodes("b"),
			actual:  []Peer{inbound("b")},
			want:    []string{"add-peer b@10.0.0.2:30303 new", "add-trusted b@10.0.0.2:30303 new"},
			applied: []string{"b@30303"},
			since:   [3]ages{{"b": 0}, {}, {}},
		},
		{
			name:    "dial stagger: not for a peer the guard dropped within the dial history",
			self:    "a",
			desired: nodes("b"),
			dropped: ages{"b": 34 * time.Second},
			want:    []string{"add-peer b@10.0.0.2:30303 new", "add-trusted b@10.0.0.2:30303 new"},
			applied: []string{"b@30303"},
			since:   [3]ages{{"b": 0}, {}, {}},
		},
		{
			name:    "dial stagger: a drop older than the dial history counts for nothing",
			self:    "a",
			desired: nodes("b"),
			dropped: ages{"b": 35 * time.Second},
			want:    []string{"add-trusted b@10.0.0.2:30303 new"},
			applied: []string{"b@30303"},
			recheck: time.Second,
			since:   [3]ages{{"b": 0}, {}, {}},
		},
		{
			name:     "departure grace: a peer that left is kept, rechecked when the grace ends",
			desired:  nodes("a"),
			previous: nodes("a", "b"),
			actual:   []Peer{inbound("a"), inbound("b")},
			applied:  []string{"a@30303", "b@30303"},
			wanted:   ages{"a": time.Minute},
			recheck:  10 * time.Second,
			since:    [3]ages{{"a": time.Minute}, {"b": 0}, {}},
		},
		{
			name:     "departure grace: still kept 1 ns before its end",
			desired:  nodes("a"),
			previous: nodes("a", "b"),
			actual:   []Peer{inbound("a"), inbound("b")},
			wanted:   ages{"a": time.Minute},
			gone:     ages{"b": 10*time.Second - 1},
			applied:  []string{"a@30303", "b@30303"},
			recheck:  1,
			since:    [3]ages{{"a": time.Minute}, {"b": 10*time.Second - 1}, {}},
		},
		{
			name:     "departure grace: removed at its end",
			desired:  nodes("a"),
			previous: nodes("a", "b"),
			actual:   []Peer{inbound("a"), inbound("b")},
			wanted:   ages{"a": time.Minute},
			gone:     ages{"b": 10 * time.Second},
			want:     []string{"remove-trusted b@10.0.0.2:30303 departed", "remove-peer b@10.0.0.2:30303 departed"},
			applied:  []string{"a@30303"},
			since:    [3]ages{{"a": time.Minute}, {}, {}},
		},
		{
			name:     "departure grace under a 10 s lease: half of it, 5 s, not DepartGrace",
			desired:  nodes("a"),
			previous: nodes("a", "b"),
			actual:   []Peer{inbound("a"), inbound("b")},
			wanted:   ages{"a": time.Minute},
			lease:    10 * time.Second,
			applied:  []string{"a@30303", "b@30303"},
			recheck:  5 * time.Second,
			since:    [3]ages{{"a": time.Minute}, {"b": 0}, {}},
		},
		{
			name:     "departure grace under a 10 s lease: still kept 1 ns before half of it",
			desired:  nodes("a"),
			previous: nodes("a", "b"),
			actual:   []Peer{inbound("a"), inbound("b")},
			wanted:   ages{"a": time.Minute},
			gone:     ages{"b": 5*time.Second - 1},
			lease:    10 * time.Second,
			applied:  []string{"a@30303", "b@30303"},
			recheck:  1,
			since:    [3]ages{{"a": time.Minute}, {"b": 5*time.Second - 1}, {}},
		},
		{
			name:     "departure grace under a 10 s lease: removed at half of it",
			desired:  nodes("a"),
			previous: nodes("a", "b"),
			actual:   []Peer{inbound("a"), inbound("b")},
			wanted:   ages{"a": time.Minute},
			gone:     ages{"b": 5 * time.Second},
			lease:    10 * time.Second,
			want:     []string{"remove-trusted b@10.0.0.2:30303 departed", "remove-peer b@10.0.0.2:30303 departed"},
			applied:  []string{"a@30303"},
			since:    [3]ages{{"a": time.Minute}, {}, {}},
		},
		{
			name:     "departure grace under a long lease: DepartGrace, the shorter",
			desired:  nodes("a"),
			previous: nodes("a", "b"),
			actual:   []Peer{inbound("a"), inbound("b")},
			wanted:   ages{"a": time.Minute},
			gone:     ages{"b": 9 * time.Second},
			lease:    time.Minute,
			applied:  []string{"a@30303", "b@30303"},
			recheck:  time.Second,
			since:    [3]ages{{"a": time.Minute}, {"b": 9 * time.Second}, {}},
		},
		{
			name:     "departure grace: a peer back in the set forgets its departure",
			desired:  nodes("a", "b"),
			previous: nodes("a", "b"),
			actual:   []Peer{connected("a", true), connected("b", true)},
			wanted:   ages{"a": time.Minute},
			gone:     ages{"b": 9 * time.Second},
			applied:  []string{"a@30303", "b@30303"},
			since:    [3]ages{{"a": time.Minute, "b": 0}, {}, {}},
		},
		{
			name:    "foreign grace: a stranger our client dialled stays, rechecked when the grace ends",
			actual:  []Peer{connected("c", false)},
			recheck: 2 * time.Second,
			applied: []string{},
			since:   [3]ages{{}, {}, {"c": 0}},
		},
		{
			name:    "foreign grace: still there 1 ns before its end",
			actual:  []Peer{connected("c", false)},
			dialled: ages{"c": 2*time.Second - 1},
			recheck: 1,
			applied: []string{},
			since:   [3]ages{{}, {}, {"c": 2*time.Second - 1}},
		},
		{
			name:    "foreign grace: disconnected at its end (its since-time kept while it is connected)",
			actual:  []Peer{connected("c", false)},
			dialled: ages{"c": 2 * time.Second},
			want:    []string{"disconnect c@10.9.9.9:51234/0 not-allowed"},
			applied: []string{},
			since:   [3]ages{{}, {}, {"c": 2 * time.Second}},
		},
		{
			name:    "foreign grace: none for a stranger that dialled us",
			actual:  []Peer{inbound("c")},
			want:    []string{"remove-trusted c@10.9.9.9:51234/0 not-allowed", "disconnect c@10.9.9.9:51234/0 not-allowed"},
			applied: []string{},
			since:   [3]ages{{}, {}, {}},
		},
		{
			name:    "foreign grace: a disconnected stranger is forgotten",
			dialled: ages{"c": time.Second},
			applied: []string{},
			since:   [3]ages{{}, {}, {}},
		},
		{
			name:     "held move: a moved peer still connected keeps its old endpoint",
			desired:  []*enode.Node{at("a", "10.0.0.1:31313")},
			previous: nodes("a"),
			actual:   []Peer{connected("a", true)},
			wanted:   ages{"a": time.Minute},
			applied:  []string{"a@30303"},
			since:    [3]ages{{"a": time.Minute}, {}, {}},
		},
		{
			name:     "held move: once it disconnects, the new endpoint replaces the old",
			desired:  []*enode.Node{at("a", "10.0.0.1:31313")},
			previous: nodes("a"),
			wanted:   ages{"a": time.Minute},
			want: []string{
				"remove-peer a@10.0.0.1:30303 moved",
				"add-peer a@10.0.0.1:31313 moved",
				"add-trusted a@10.0.0.1:31313 moved",
			},
			applied: []string{"a@31313"},
			since:   [3]ages{{"a": time.Minute}, {}, {}},
		},
		{
			name:     "all rules at once: the earliest end is the recheck",
			self:     "a",
			desired:  nodes("b"),
			previous: nodes("d"),
			actual:   []Peer{connected("c", false), inbound("d")},
			dialled:  ages{"c": 1500 * time.Millisecond},
			gone:     ages{"d": 9 * time.Second},
			wanted:   ages{"b": 200 * time.Millisecond},
			want:     []string{"add-trusted b@10.0.0.2:30303 new"},
			applied:  []string{"b@30303", "d@30303"},
			recheck:  500 * time.Millisecond,
			since:    [3]ages{{"b": 200 * time.Millisecond}, {"d": 9 * time.Second}, {"c": 1500 * time.Millisecond}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			self := tc.self
			if self == "" {
				self = "self"
			}
			out, err := Timed(TimedInput{
				Self: id(self), Desired: tc.desired, Previous: tc.previous, Actual: tc.actual,
				Dropped: tc.dropped.times(),
				Since:   Since{Wanted: tc.wanted.times(), Gone: tc.gone.times(), Dialled: tc.dialled.times()},
				Now:     t0, Rules: withLease(rules, tc.lease),
			})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range out.Actions {
				got = append(got, render(a))
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("actions\n got %q\nwant %q", got, tc.want)
			}
			var applied []string
			for _, n := range out.Applied {
				applied = append(applied, nameOf[n.ID()]+"@"+strconv.Itoa(n.TCP()))
			}
			sort.Strings(applied)
			if tc.applied == nil {
				tc.applied = []string{}
			}
			if applied == nil {
				applied = []string{}
			}
			if !slices.Equal(applied, tc.applied) {
				t.Errorf("applied %q, want %q", applied, tc.applied)
			}
			if out.Recheck != tc.recheck {
				t.Errorf("recheck %v, want %v", out.Recheck, tc.recheck)
			}
			for i, got := range []map[enode.ID]time.Time{out.Since.Wanted, out.Since.Gone, out.Since.Dialled} {
				if g, w := agesOf(got), tc.since[i]; !equalAges(g, w) {
					t.Errorf("since[%s] = %v, want %v", []string{"wanted", "gone", "dialled"}[i], g, w)
				}
			}
		})
	}
}

func withLease(r Rules, lease time.Duration) Rules {
	r.Lease = lease
	return r
}

func equalAges(a, b ages) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A sequence of calls, each fed the Since of the one before, as the agent
// does: the grace runs from the first call that saw the change.
func TestTimedCarriesSince(t *testing.T) {
	in := TimedInput{Self: id("self"), Desired: nodes("a"), Previous: nodes("a", "b"),
		Actual: []Peer{connected("a", true), connected("b", true)}, Now: t0, Rules: rules}
	for _, step := range []struct {
		after   time.Duration
		removed bool
	}{{0, false}, {5 * time.Second, false}, {10*time.Second - 1, false}, {10 * time.Second, true}} {
		in.Now = t0.Add(step.after)
		out, err := Timed(in)
		if err != nil {
			t.Fatal(err)
		}
		removed := len(out.Actions) > 0
		if removed != step.removed {
			t.Fatalf("at +%v: actions %v, want removal %v", step.after, out.Actions, step.removed)
		}
		in.Since = out.Since
	}
}

func TestTimedInputErrors(t *testing.T) {
	for name, in := range map[string]TimedInput{
		"nil desired":  {Desired: []*enode.Node{nil}},
		"nil previous": {Previous: []*enode.Node{nil}},
		"nil actual":   {Actual: []Peer{{}}},
		"conflict":     {Desired: []*enode.Node{std("a"), at("a", "10.1.1.1:1")}},
	} {
		if _, err := Timed(in); !errors.Is(err, ErrNilNode) && !errors.Is(err, ErrConflict) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}
