package dashboard

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/registry"
)

func id(c byte) string { return strings.Repeat(string(c), 64) }

func TestHealth(t *testing.T) {
	cases := []struct {
		name        string
		m           Member
		syncing     int
		top         uint64
		want, cause string
	}{
		{"revoked", Member{Revoked: true, Nodes: 3, Live: 3}, 0, 0, HealthRevoked, "credential revoked"},
		{"no nodes", Member{}, 0, 0, HealthNoNodes, "no node registered"},
		{"all lapsed", Member{Nodes: 2}, 0, 0, HealthDown, "no live node"},
		{"one lapsed", Member{Nodes: 3, Live: 2, Head: 10}, 0, 10, HealthDegraded, "1 lease lapsed"},
		{"two lapsed", Member{Nodes: 4, Live: 2, Head: 10}, 0, 10, HealthDegraded, "2 leases lapsed"},
		{"syncing", Member{Nodes: 2, Live: 2, Head: 10}, 1, 10, HealthDegraded, "1 node syncing"},
		{"behind", Member{Nodes: 2, Live: 2, Head: 10}, 0, 27, HealthDegraded, "head behind the consortium's"},
		{"just within lag", Member{Nodes: 2, Live: 2, Head: 10}, 0, 26, HealthUp, ""},
		{"up", Member{Nodes: 2, Live: 2, Head: 10}, 0, 10, HealthUp, ""},
	}
	for _, c := range cases {
		got, cause := health(c.m, c.syncing, c.top, 16)
		if got != c.want || cause != c.cause {
			t.Errorf("%s: got (%q, %q), want (%q, %q)", c.name, got, cause, c.want, c.cause)
		}
	}
}

func TestEdges(t *testing.T) {
	a, b, c, x := id('a'), id('b'), id('c'), id('x')
	cases := []struct {
		name  string
		nodes []Node
		want  []edgeKey
	}{
		{"both sides report: one edge", []Node{
			{ID: a, Live: true, PeerIDs: []string{b}}, {ID: b, Live: true, PeerIDs: []string{a}},
		}, []edgeKey{{a, b}}},
		{"one side reports: still an edge", []Node{
			{ID: a, Live: true}, {ID: b, Live: true, PeerIDs: []string{a}},
		}, []edgeKey{{a, b}}},
		{"unknown peer: no edge", []Node{
			{ID: a, Live: true, PeerIDs: []string{x}},
		}, nil},
		{"self: no edge", []Node{
			{ID: a, Live: true, PeerIDs: []string{a}},
		}, nil},
		{"lapsed reporter: stale, no edge", []Node{
			{ID: a, PeerIDs: []string{b}}, {ID: b, Live: true},
		}, nil},
		{"live reporter to a lapsed peer: an edge", []Node{
			{ID: a, Live: true, PeerIDs: []string{b, c}}, {ID: b}, {ID: c, Live: true},
		}, []edgeKey{{a, b}, {a, c}}},
	}
	for _, c := range cases {
		got := edges(c.nodes)
		want := map[edgeKey]struct{}{}
		for _, e := range c.want {
			want[e] = struct{}{}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", c.name, got, want)
		}
	}
}

func TestVisibleEvent(t *testing.T) {
	ev := func(m, r, pm, pr string) Event {
		return Event{Kind: EventPeered, Member: m, Role: r, Node: id('a'), PeerMember: pm, PeerRole: pr, Peer: id('b')}
	}
	acme := registry.Principal{Name: "acme"}
	cases := []struct {
		name string
		p    registry.Principal
		e    Event
		want bool
	}{
		{"admin sees all", admin, ev("bank", "tx", "coop", "validator"), true},
		{"own nodes", acme, ev("acme", "tx", "acme", "validator"), true},
		{"own public with another's public", acme, ev("acme", "public", "bank", "public"), true},
		{"another's public with own", acme, ev("bank", "public", "acme", "public"), true},
		{"others among themselves", acme, ev("bank", "public", "coop", "public"), false},
		{"own node with another's private node", acme, ev("acme", "public", "bank", "tx"), false},
		{"another's private with own", acme, ev("bank", "validator", "acme", "tx"), false},
	}
	for _, c := range cases {
		if got := visibleEvent(c.p, c.e); got != c.want {
			t.Errorf("%s: got %v", c.name, got)
		}
	}
}

func TestSummarize(t *testing.T) {
	a, b, c := id('a'), id('b'), id('c')
	nodes := []Node{
		{ID: a, Member: "acme", Role: "validator", Live: true, Head: 100, Coinbase: "0xaa"},
		{ID: b, Member: "acme", Role: "tx", Live: false, Head: 90},
		{ID: c, Member: "bank", Role: "public", Live: true, Head: 101},
	}
	blocks := []Block{{Number: 101, Signer: "0xbb", Member: "bank"}, {Number: 100, Signer: "0xaa", Member: "acme"}, {Number: 99, Signer: "0xcc"}}
	all := []registry.MemberView{{Name: "acme"}, {Name: "bank"}, {Name: "coop"}, {Name: "gone", Revoked: true}}
	got := summarize("", all, nodes, blocks, 16)
	want := []Member{
		{Name: "acme", Health: HealthDegraded, Reason: "1 lease lapsed", Nodes: 2, Live: 1, Head: 100, Signers: []string{"0xaa"}, Sealed: 1},
		{Name: "bank", Health: HealthUp, Nodes: 1, Live: 1, Head: 101, Signers: []string{"0xbb"}, Sealed: 1},
		{Name: "coop", Health: HealthNoNodes, Reason: "no node registered"},
		{Name: "gone", Revoked: true, Health: HealthRevoked, Reason: "credential revoked"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("admin:\n got %+v\nwant %+v", got, want)
	}
	// A member's cards: itself (even bare) and whoever its nodes show.
	got = summarize("coop", nil, nodes[2:], nil, 16)
	if len(got) != 2 || got[0].Name != "bank" || got[1].Name != "coop" || got[1].Health != HealthNoNodes {
		t.Errorf("member: %+v", got)
	}
}

func TestTracker(t *testing.T) {
	a, b, c := id('a'), id('b'), id('c')
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	reg := t0.Add(-time.Hour)
	tr := newTracker(4, 2)
	n := func(x, member, role string, live bool, peers ...string) Node {
		return Node{ID: x, Member: member, Role: role, Live: live, PeerIDs: peers, Changed: reg, Expires: t0.Add(time.Minute)}
	}
	tr.observe([]Node{n(a, "acme", "public", true, b), n(b, "bank", "public", true, a), n(c, "acme", "tx", true)}, 1, t0)
	if ev, next := tr.eventsAfter(admin, 0); len(ev) != 0 || next != 0 {
		t.Fatalf("the baseline announced %v", ev)
	}
	// c connects to a; b drops a.
	t1 := t0.Add(time.Second)
	tr.observe([]Node{n(a, "acme", "public", true, c), n(b, "bank", "public", true), n(c, "acme", "tx", true, a)}, 1, t1)
	ev, next := tr.eventsAfter(admin, 0)
	if next != 2 || len(ev) != 2 {
		t.Fatalf("events %+v next %d", ev, next)
	}
	if ev[0].Kind != EventDisconnected || ev[0].Node != a || ev[0].Peer != b || ev[0].PeerMember != "bank" {
		t.Errorf("first %+v", ev[0])
	}
	if ev[1].Kind != EventPeered || ev[1].Node != a || ev[1].Peer != c || !ev[1].Time.Equal(t1) {
		t.Errorf("second %+v", ev[1])
	}
	// bank sees its own node's disconnection (both ends public), not acme's inner peering.
	if ev, _ := tr.eventsAfter(registry.Principal{Name: "bank"}, 0); len(ev) != 1 || ev[0].Kind != EventDisconnected {
		t.Errorf("bank sees %+v", ev)
	}
	if got, _ := tr.changed(a); !got.Equal(t1) {
		t.Errorf("a changed at %v, want %v", got, t1)
	}
	if got, _ := tr.changed(c); !got.Equal(t1) {
		t.Errorf("c changed at %v, want %v", got, t1)
	}
	// A lapse is dated by the lease's end.
	t2 := t0.Add(2 * time.Minute)
	lapsed := n(c, "acme", "tx", false, a)
	tr.observe([]Node{n(a, "acme", "public", true, c), n(b, "bank", "public", true), lapsed}, 2, t2)
	if got, _ := tr.changed(c); !got.Equal(lapsed.Expires) {
		t.Errorf("lapsed c changed at %v, want %v", got, lapsed.Expires)
	}
	// The ring keeps the newest four; a reader that fell behind resumes there.
	for i := 0; i < 3; i++ {
		tr.observe([]Node{n(a, "acme", "public", true, b), n(b, "bank", "public", true)}, 3, t2)
		tr.observe([]Node{n(a, "acme", "public", true), n(b, "bank", "public", true)}, 3, t2)
	}
	if ev, next := tr.eventsAfter(admin, 0); len(ev) != 4 || next != 9 {
		t.Errorf("after wrapping: %d events, next %d", len(ev), next)
	}
}

func TestTrackerBlocks(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := newTracker(8, 2)
	tr.observe([]Node{
		{ID: id('a'), Member: "acme", Role: "validator", Live: true, Coinbase: "0xaa", Head: 7, HeadSigner: "0xbb"},
		{ID: id('b'), Member: "bank", Role: "validator", Live: true, Coinbase: "0xbb", Head: 8, HeadSigner: "0xaa"},
		{ID: id('c'), Member: "coop", Role: "tx", Live: true, Coinbase: "0xaa", Head: 6, HeadSigner: "0xcc"},
		{ID: id('d'), Member: "coop", Role: "tx", Live: false, Head: 9, HeadSigner: "0xcc"}, // stale
	}, 1, t0)
	want := []Block{{Number: 8, Signer: "0xaa", Member: "acme"}, {Number: 7, Signer: "0xbb", Member: "bank"}}
	if got := tr.recentBlocks(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// A block is credited as checked only when the registrar verified its seal
// and the crediting member's coinbase; a member that proved the coinbase
// wins over one that only claims it.
func TestTrackerBlocksChecked(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := newTracker(8, 4)
	tr.observe([]Node{
		// bank claims acme's signer, unchecked; acme proved it.
		{ID: id('a'), Member: "acme", Role: "validator", Live: true, Coinbase: "0xaa", CoinbaseChecked: true, Head: 7, HeadSigner: "0xaa", SealChecked: true},
		{ID: id('b'), Member: "bank", Role: "validator", Live: true, Coinbase: "0xaa", Head: 8, HeadSigner: "0xaa"},
		{ID: id('c'), Member: "coop", Role: "validator", Live: true, Coinbase: "0xcc", Head: 9, HeadSigner: "0xcc", SealChecked: true},
	}, 1, t0)
	want := []Block{
		{Number: 9, Signer: "0xcc", Member: "coop"},                // seal checked, coinbase only claimed
		{Number: 8, Signer: "0xaa", Member: "acme"},                // seal unchecked
		{Number: 7, Signer: "0xaa", Member: "acme", Checked: true}, // both checked
	}
	if got := tr.recentBlocks(); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}
