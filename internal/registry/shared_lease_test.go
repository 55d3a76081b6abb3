package registry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/store"
)

// A renewal through A keeps the node live on B past the expiry B was told
// at registration, and B's reaper leaves it alone.
func TestSharedRenewalKeepsLeaseOnB(t *testing.T) {
	c := newCluster(t, 2, false)
	a, b := c.regs[0], c.regs[1]
	c.addMember(a, "m")
	n := newNode(t, "m", "tx")
	t0 := c.clock.Now()
	c.register(a, n, 1, "10.0.0.1")
	c.sync()

	c.clock.Advance(20 * time.Second)
	if _, err := a.Renew(context.Background(), Principal{Name: "m"}, n.id, nil); err != nil {
		t.Fatal(err)
	}
	a.flush(context.Background())
	c.sync()

	c.clock.Advance(15 * time.Second) // past t0+TTL, before the renewed lease ends
	idx := b.Index()
	b.Reap()
	if v := nodeOf(t, b, n.id); !v.Live || !v.Expires.Equal(ms(t0.Add(20*time.Second+sharedTTL))) {
		t.Fatalf("on B after A's renewal: live=%v expires=%v, want live until %v", v.Live, v.Expires, t0.Add(20*time.Second+sharedTTL))
	}
	if b.Index() != idx {
		t.Fatal("B's reaper announced an expiry for a node renewed through A")
	}
	// The agent may renew through B next.
	if _, err := b.Renew(context.Background(), Principal{Name: "m"}, n.id, nil); err != nil {
		t.Fatalf("renewal through B: %v", err)
	}

	c.clock.Advance(2 * sharedTTL)
	b.Reap()
	if nodeOf(t, b, n.id).Live {
		t.Fatal("node still live on B after its lease ran out")
	}
}

// A renewal batch older than the lease a replica holds (written behind by
// another replica, or an old registration's echo) never shortens it, and a
// flush writes the lease memory holds, not the one its renewal set.
func TestSharedOlderRenewalDoesNotShorten(t *testing.T) {
	c := newCluster(t, 2, false)
	a, b := c.regs[0], c.regs[1]
	ctx := context.Background()
	p := Principal{Name: "m"}
	c.addMember(a, "m")
	n := newNode(t, "m", "tx")
	t0 := c.clock.Now()
	c.register(a, n, 1, "10.0.0.1")
	c.sync()

	c.clock.Advance(5 * time.Second)
	if _, err := b.Renew(ctx, p, n.id, nil); err != nil { // B: t0+35, not yet written
		t.Fatal(err)
	}
	c.clock.Advance(5 * time.Second)
	if _, err := a.Renew(ctx, p, n.id, nil); err != nil { // A: t0+40
		t.Fatal(err)
	}
	a.flush(ctx)
	c.sync()
	want := t0.Add(10*time.Second + sharedTTL)
	if got := nodeOf(t, b, n.id).Expires; !got.Equal(want) {
		t.Fatalf("B's lease after A's renewal: %v, want %v", got, want)
	}
	b.flush(ctx) // B's own renewal was for t0+35
	c.sync()
	if sn, _ := c.s.node(n.id); !sn.Expires.Equal(want) {
		t.Fatalf("stored lease after B's flush: %v, want %v (B wrote back its older renewal)", sn.Expires, want)
	}
	ia, ib := a.Index(), b.Index()
	sn, _ := c.s.node(n.id)
	old := sn
	old.Expires = t0.Add(sharedTTL + time.Second)
	c.s.inject(store.Change{Renewal: &store.Renewal{ID: n.id, Expires: t0.Add(sharedTTL + 2*time.Second)}})
	c.s.inject(store.Change{Node: &old})
	c.sync()
	for i, r := range c.regs {
		if got := nodeOf(t, r, n.id).Expires; !got.Equal(want) {
			t.Fatalf("replica %d: lease after older echoes: %v, want %v", i, got, want)
		}
	}
	if a.Index() != ia || b.Index() != ib {
		t.Fatal("older echoes moved the index")
	}
}

// A lease B has reaped comes back when a renewal written by A before it ran
// out arrives late: B un-lapses the node and tells its waiters.
func TestSharedLateRenewalRevivesOnB(t *testing.T) {
	c := newCluster(t, 2, false)
	a, b := c.regs[0], c.regs[1]
	c.addMember(a, "m")
	n := newNode(t, "m", "tx")
	c.register(a, n, 1, "10.0.0.1")
	c.sync()

	c.sts[1].hold(true)
	c.clock.Advance(25 * time.Second)
	if _, err := a.Renew(context.Background(), Principal{Name: "m"}, n.id, nil); err != nil {
		t.Fatal(err)
	}
	a.flush(context.Background())
	c.clock.Advance(10 * time.Second)
	b.Reap()
	if nodeOf(t, b, n.id).Live {
		t.Fatal("B did not reap the node it had not seen renewed")
	}
	idx, ch := b.Index(), b.Changed()
	c.sts[1].hold(false)
	waitClosed(t, ch)
	c.sync()
	if !nodeOf(t, b, n.id).Live || b.Index() != idx+1 {
		t.Fatalf("after the late renewal: live=%v, index moved by %d; want live, 1", nodeOf(t, b, n.id).Live, b.Index()-idx)
	}
	ev := b.Events(admin, 0)
	if last := ev[len(ev)-1]; last.Kind != EventRegistered || last.Node != n.id {
		t.Fatalf("last event on B = %+v, want the node registered again", last)
	}
	// Unknown IDs are ignored.
	c.s.inject(store.Change{Renewal: &store.Renewal{ID: newNode(t, "m", "tx").id, Expires: c.clock.Now().Add(time.Hour)}})
	c.sync()
	if len(b.Nodes(admin)) != 1 {
		t.Fatal("a renewal of an unknown node created one")
	}
}

// A Reload replaces B's memory with the store's state, moves the index once,
// and gives no restart grace to a lease that ran out.
func TestSharedReloadReplacesState(t *testing.T) {
	c := newCluster(t, 2, false)
	a, b := c.regs[0], c.regs[1]
	ctx := context.Background()
	c.addMember(a, "m")
	n1, n2, n3, n4 := newNode(t, "m", "tx"), newNode(t, "m", "tx"), newNode(t, "m", "tx"), newNode(t, "m", "tx")
	c.register(a, n1, 1, "10.0.0.1")
	c.register(a, n2, 1, "10.0.0.2")
	c.sync()

	c.sts[1].hold(true)
	if err := a.Free(ctx, admin, n1.id); err != nil {
		t.Fatal(err)
	}
	c.addMember(a, "late")
	c.register(a, n3, 1, "10.0.0.3")
	// n4's lease ran out 10 s ago: Open would give it a fresh TTL, a Reload
	// must not.
	now := c.clock.Now()
	if err := c.sts[0].PutNode(ctx, store.Node{ID: n4.id, Member: "m", Role: "tx", ENR: n4.reg(t, 1, "10.0.0.4").ENR,
		Registered: now.Add(-time.Minute), Updated: now.Add(-time.Minute), Expires: now.Add(-10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	idx, ch := b.Index(), b.Changed()
	c.sts[1].lose()
	c.sts[1].hold(false)
	waitClosed(t, ch)
	c.sync()

	if b.Index() != idx+1 {
		t.Fatalf("a Reload moved the index by %d, want 1", b.Index()-idx)
	}
	if _, err := b.Node(admin, n1.id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted node after Reload: %v", err)
	}
	for _, n := range []*tnode{n2, n3} {
		if !nodeOf(t, b, n.id).Live {
			t.Fatalf("node %s not live after Reload", n.id)
		}
	}
	if nodeOf(t, b, n4.id).Live {
		t.Fatal("a lease that ran out before the Reload came back (restart grace applied)")
	}
	members, _ := b.Members(admin)
	if len(members) != 2 || members[0].Name != "late" {
		t.Fatalf("members after Reload: %+v", members)
	}
	if ps, _ := b.PeersFor(Principal{Name: "m"}, n2.id); len(ps.Static) != 1 {
		t.Fatalf("n2's set after Reload = %v, want n3 only", ps.Static)
	}
}

// A replica opening over a shared store gives the restart grace only when no
// lease in it is running (every registrar was down), and shares the fresh
// leases it gives; when another replica kept leases running, the state is
// current and a lapsed record stays lapsed.
func TestSharedOpenGrace(t *testing.T) {
	ctx := context.Background()
	t.Run("all down", func(t *testing.T) {
		c := newCluster(t, 1, false)
		a := c.regs[0]
		c.addMember(a, "m")
		n := newNode(t, "m", "tx")
		c.register(a, n, 1, "10.0.0.1")
		c.sync()
		c.clock.Advance(sharedTTL + 10*time.Second)
		a.Reap()
		late := c.open(c.s.replica())
		if !nodeOf(t, late, n.id).Live {
			t.Fatal("no restart grace after every registrar was down")
		}
		late.flush(ctx)
		c.sync()
		if !nodeOf(t, a, n.id).Live {
			t.Fatal("the grace given by the replica that started was not shared")
		}
	})
	t.Run("others up", func(t *testing.T) {
		c := newCluster(t, 1, false)
		a := c.regs[0]
		c.addMember(a, "m")
		n1, n2 := newNode(t, "m", "tx"), newNode(t, "m", "tx")
		c.register(a, n1, 1, "10.0.0.1")
		c.clock.Advance(20 * time.Second)
		c.register(a, n2, 1, "10.0.0.2")
		c.clock.Advance(20 * time.Second) // n1 ran out 10 s ago, n2 runs
		c.sync()
		late := c.open(c.s.replica())
		if nodeOf(t, late, n1.id).Live {
			t.Fatal("a replica starting beside running ones revived a lapsed lease")
		}
		if !nodeOf(t, late, n2.id).Live {
			t.Fatal("running lease not live on the new replica")
		}
	})
}

// While the shared store has no quorum, renewals taken by other replicas
// cannot arrive, so a replica must not let leases run out: the nodes stay in
// every answer. Once the store answers again (and a short hold has passed),
// a lease nobody renewed does run out.
func TestSharedStoreDownPausesExpiry(t *testing.T) {
	c := newCluster(t, 2, false)
	a, b := c.regs[0], c.regs[1]
	ctx := context.Background()
	c.addMember(a, "m")
	n := newNode(t, "m", "tx")
	c.register(a, n, 1, "10.0.0.1")
	c.sync()

	c.s.setDown(true)
	b.setStoreDown(b.store.Ping(ctx) != nil) // what watchHealth does every second
	idx := b.Index()
	for i := 0; i < 3*int(sharedTTL/time.Second); i++ {
		c.clock.Advance(time.Second)
		b.Reap()
		if !nodeOf(t, b, n.id).Live {
			t.Fatalf("%d s into the store's outage, B let the lease run out", i+1)
		}
	}
	if b.Index() != idx {
		t.Fatal("B announced a change while its store was down")
	}

	c.s.setDown(false)
	b.setStoreDown(b.store.Ping(ctx) != nil)
	b.Reap()
	if !nodeOf(t, b, n.id).Live {
		t.Fatal("lease ran out at once when the store came back: renewals held back need a moment to arrive")
	}
	// FlushInterval is an hour in these tests: the hold is three of them.
	c.clock.Advance(3*time.Hour + 5*time.Second)
	b.Reap()
	if nodeOf(t, b, n.id).Live {
		t.Fatal("a lease nobody renewed did not run out after the store came back")
	}
}
