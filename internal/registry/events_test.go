package registry

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/auth"
)

// A member's event stream must say when a node it was offered leaves its
// answers, however it leaves: these are the two ways that are neither a
// lease ending nor a removal (golden topologies 05 and 10 show them in
// full). Each case is played on two replicas of a shared store: the one
// written to (the local write path) and the other (the replication path)
// must wake their watchers and tell the same.

// watch is, for each replica, where a principal's event stream stood and
// the channel its blocking queries were waiting on.
type watch struct {
	p       Principal
	after   []uint64
	changed []<-chan struct{}
}

func watchFrom(c *cluster, p Principal) *watch {
	w := &watch{p: p}
	for _, r := range c.regs {
		var last uint64
		if ev := r.Events(p, 0); len(ev) > 0 {
			last = ev[len(ev)-1].Seq
		}
		w.after = append(w.after, last)
		w.changed = append(w.changed, r.Changed())
	}
	return w
}

// told checks that every replica woke w's watchers and told w's principal
// exactly want (kind, member, node ID, role) since watchFrom.
func (w *watch) told(t *testing.T, c *cluster, want ...Event) {
	t.Helper()
	for i, r := range c.regs {
		waitClosed(t, w.changed[i])
		var got []Event
		for _, e := range r.Events(w.p, w.after[i]) {
			got = append(got, Event{Kind: e.Kind, Member: e.Member, Node: e.Node, Role: e.Role})
		}
		if !slices.Equal(got, want) {
			t.Errorf("replica %d told %s %+v, want %+v", i, w.p.Name, got, want)
		}
	}
}

// toldInAnyOrder is told for events whose order is not the rule's (the
// reaper's, of leases that end together).
func (w *watch) toldInAnyOrder(t *testing.T, c *cluster, want ...Event) {
	t.Helper()
	byNode := func(x, y Event) int { return strings.Compare(x.Node, y.Node) }
	want = slices.Clone(want)
	slices.SortFunc(want, byNode)
	for i, r := range c.regs {
		waitClosed(t, w.changed[i])
		var got []Event
		for _, e := range r.Events(w.p, w.after[i]) {
			got = append(got, Event{Kind: e.Kind, Member: e.Member, Node: e.Node, Role: e.Role})
		}
		slices.SortFunc(got, byNode)
		if !slices.Equal(got, want) {
			t.Errorf("replica %d told %s %+v, want %+v (in any order)", i, w.p.Name, got, want)
		}
	}
}

// offered reports whether node id's answer on every replica holds enode.
func offered(t *testing.T, c *cluster, p Principal, id, enode string) []bool {
	t.Helper()
	var out []bool
	for _, r := range c.regs {
		ps, err := r.PeersFor(p, id)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, slices.Contains(ps.Static, enode))
	}
	return out
}

func TestRevocationTellsOthersItsNodesLeft(t *testing.T) {
	c := newCluster(t, 2, false)
	a := c.regs[0]
	c.addMember(a, "acme")
	c.addMember(a, "beta")
	c.sync()
	acme := newNode(t, "acme", "public")
	bp, bv := newNode(t, "beta", "public"), newNode(t, "beta", "validator")
	c.register(a, acme, 1, "10.0.0.1")
	pub := c.register(a, bp, 1, "10.0.0.2").PublicEnode
	c.register(a, bv, 1, "10.0.0.3")
	c.sync()
	if got := offered(t, c, Principal{Name: "acme"}, acme.id, pub); !slices.Equal(got, []bool{true, true}) {
		t.Fatalf("beta's public node in acme's answer on each replica: %v, want it on both", got)
	}
	w, wa := watchFrom(c, Principal{Name: "acme"}), watchFrom(c, admin)

	if _, err := a.RevokeMember(context.Background(), admin, "beta"); err != nil {
		t.Fatal(err)
	}
	c.sync()
	if got := offered(t, c, Principal{Name: "acme"}, acme.id, pub); !slices.Equal(got, []bool{false, false}) {
		t.Fatalf("beta's public node in acme's answer on each replica: %v, want it on neither", got)
	}
	w.told(t, c, Event{Kind: EventLeft, Member: "beta", Node: bp.id, Role: "public"})
	left := []Event{{Kind: EventLeft, Member: "beta", Node: bp.id, Role: "public"}, {Kind: EventLeft, Member: "beta", Node: bv.id, Role: "validator"}}
	slices.SortFunc(left, func(x, y Event) int { return strings.Compare(x.Node, y.Node) })
	wa.told(t, c, append([]Event{{Kind: EventMemberRevoked, Member: "beta"}}, left...)...)

	// Its leases then run out (it may renew no more): acme was told it
	// left and is told nothing again; its end is the administrator's to
	// see.
	w, wa = watchFrom(c, Principal{Name: "acme"}), watchFrom(c, admin)
	c.clock.Advance(2 * sharedTTL)
	for _, r := range c.regs {
		r.Reap()
	}
	c.sync()
	w.toldInAnyOrder(t, c, Event{Kind: EventExpired, Member: "acme", Node: acme.id, Role: "public"})
	expired := []Event{{Kind: EventExpired, Member: "acme", Node: acme.id, Role: "public"}}
	for _, e := range left {
		expired = append(expired, Event{Kind: EventExpired, Member: e.Member, Node: e.Node, Role: e.Role})
	}
	wa.toldInAnyOrder(t, c, expired...)
}

func TestPublicNodeTurnedPrivateTellsOthersItLeft(t *testing.T) {
	c := newCluster(t, 2, false)
	a := c.regs[0]
	c.addMember(a, "acme")
	c.addMember(a, "beta")
	c.sync()
	ap, bp := newNode(t, "acme", "public"), newNode(t, "beta", "public")
	pub := c.register(a, ap, 1, "10.0.0.1").PublicEnode
	c.register(a, bp, 1, "10.0.0.2")
	c.sync()
	w, wa := watchFrom(c, Principal{Name: "beta"}), watchFrom(c, admin)

	ap.role = "validator"
	c.register(a, ap, 2, "10.0.0.1")
	c.sync()
	if got := offered(t, c, Principal{Name: "beta"}, bp.id, pub); !slices.Equal(got, []bool{false, false}) {
		t.Fatalf("acme's former public node in beta's answer on each replica: %v, want it on neither", got)
	}
	gone := Event{Kind: EventLeft, Member: "acme", Node: ap.id, Role: "public"}
	w.told(t, c, gone)
	wa.told(t, c, gone, Event{Kind: EventUpdated, Member: "acme", Node: ap.id, Role: "validator"})
}

// A member the chain's vote readmits while its nodes' leases still run:
// they are offered again, and the others are told so.
func TestReadmissionTellsOthersItsNodesAreBack(t *testing.T) {
	c := newCluster(t, 2, false)
	a := c.regs[0]
	c.addMember(a, "acme")
	cred := c.addMember(a, "beta")
	c.sync()
	acme, bp := newNode(t, "acme", "public"), newNode(t, "beta", "public")
	c.register(a, acme, 1, "10.0.0.1")
	pub := c.register(a, bp, 1, "10.0.0.2").PublicEnode
	c.sync()
	if _, err := a.SyncChainMembers(context.Background(), []ChainMember{{Name: "acme"}}); err != nil {
		t.Fatal(err)
	}
	c.sync()
	w := watchFrom(c, Principal{Name: "acme"})

	back := []ChainMember{{Name: "acme"}, {Name: "beta", CredHash: auth.Hash(cred.Secret)}}
	if _, err := a.SyncChainMembers(context.Background(), back); err != nil {
		t.Fatal(err)
	}
	c.sync()
	if got := offered(t, c, Principal{Name: "acme"}, acme.id, pub); !slices.Equal(got, []bool{true, true}) {
		t.Fatalf("beta's public node in acme's answer on each replica: %v, want it on both", got)
	}
	w.told(t, c, Event{Kind: EventRegistered, Member: "beta", Node: bp.id, Role: "public"})
	if _, err := a.Authenticate(cred.String()); err != nil {
		t.Fatalf("beta readmitted with its credential: %v", err)
	}
}
