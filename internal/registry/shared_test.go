package registry

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/store"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

const sharedTTL = 30 * time.Second

var admin = Principal{Name: auth.Admin, Admin: true}

// cluster is several registries over one fake shared store, on one clock.
type cluster struct {
	t     *testing.T
	s     *sharedStore
	clock *testutil.Clock
	regs  []*Registry
	sts   []*fakeReplica
}

// newCluster opens n registries over one fresh shared store; the first
// creates the administrator. With run, each runs Run; without, only the
// watch (follow), so that leases, renewals and flushes move when the test
// says so.
func newCluster(t *testing.T, n int, run bool) *cluster {
	t.Helper()
	c := &cluster{t: t, s: newSharedStore(), clock: testutil.NewClock()}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for range n {
		st := c.s.replica()
		r := c.open(st)
		if _, _, err := r.EnsureAdmin(ctx); err != nil {
			t.Fatal(err)
		}
		c.regs, c.sts = append(c.regs, r), append(c.sts, st)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if run {
				r.Run(ctx)
			} else {
				r.follow(ctx)
			}
		}()
	}
	c.sync()
	return c
}

func (c *cluster) open(st *fakeReplica) *Registry {
	c.t.Helper()
	r, err := Open(context.Background(), st, Config{
		TTL: sharedTTL, FlushInterval: time.Hour, Now: c.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		c.t.Fatal(err)
	}
	return r
}

func (c *cluster) sync() { c.t.Helper(); c.s.sync(c.t, c.sts...) }

func (c *cluster) addMember(r *Registry, name string) auth.Credential {
	c.t.Helper()
	cred, err := r.AddMember(context.Background(), admin, name)
	if err != nil {
		c.t.Fatal(err)
	}
	return cred
}

// tnode is a node key and the records it signs.
type tnode struct {
	key    *ecdsa.PrivateKey
	id     string
	member string
	role   string
}

func newNode(t *testing.T, member, role string) *tnode {
	k := testutil.Key(t)
	return &tnode{key: k, id: testutil.ID(k), member: member, role: role}
}

func (n *tnode) reg(t *testing.T, seq uint64, ip string) Registration {
	rg := Registration{Role: n.role, ENR: testutil.ENR(t, n.key, seq, ip, 30303, 30303)}
	if n.role == "public" {
		rg.PublicENR = testutil.ENR(t, n.key, seq, "203.0.113.1", 30303, 30303)
	}
	return rg
}

func (c *cluster) register(r *Registry, n *tnode, seq uint64, ip string) NodeView {
	c.t.Helper()
	v, _, err := r.Register(context.Background(), Principal{Name: n.member}, n.reg(c.t, seq, ip))
	if err != nil {
		c.t.Fatal(err)
	}
	return v
}

func waitClosed(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("Changed() was not closed within 5 s")
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func nodeOf(t *testing.T, r *Registry, id string) NodeView {
	t.Helper()
	v, err := r.Node(admin, id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A registration through A reaches an agent blocked on B: B's Changed()
// closes by itself (Run follows the store) and B answers the new set.
func TestSharedRegistrationReachesWaiterOnB(t *testing.T) {
	c := newCluster(t, 2, true)
	a, b := c.regs[0], c.regs[1]
	c.addMember(a, "m")
	c.sync() // B knows m: it refuses a member it does not know
	n1, n2 := newNode(t, "m", "tx"), newNode(t, "m", "validator")
	c.register(b, n1, 1, "10.0.0.1")
	c.sync()

	p := Principal{Name: "m"}
	before, err := b.PeersFor(p, n1.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Static) != 0 {
		t.Fatalf("peers before = %v, want none", before.Static)
	}
	ch := b.Changed()
	v := c.register(a, n2, 1, "10.0.0.2")
	waitClosed(t, ch)
	after, err := b.PeersFor(p, n1.id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(after.Static, []string{v.Enode}) || after.ETag == before.ETag {
		t.Fatalf("peers on B after A's registration = %v (etag %s), want [%s] with a new etag", after.Static, after.ETag, v.Enode)
	}
}

// A member's removal of its node and the administrator's deletion through A
// reach B: B's waiters wake, and B keeps the binding and seq of a removed node.
func TestSharedRemovalsReachB(t *testing.T) {
	c := newCluster(t, 2, false)
	a, b := c.regs[0], c.regs[1]
	c.addMember(a, "m")
	p := Principal{Name: "m"}
	n1, n2 := newNode(t, "m", "tx"), newNode(t, "m", "tx")
	c.register(a, n1, 1, "10.0.0.1")
	c.register(a, n2, 1, "10.0.0.2")
	c.sync()
	if ps, _ := b.PeersFor(p, n2.id); len(ps.Static) != 1 {
		t.Fatalf("B's set for n2 = %v, want n1", ps.Static)
	}

	ch := b.Changed()
	if err := a.Remove(context.Background(), p, n1.id); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch)
	c.sync()
	if ps, _ := b.PeersFor(p, n2.id); len(ps.Static) != 0 {
		t.Fatalf("B's set for n2 after n1's removal = %v, want none", ps.Static)
	}
	if v := nodeOf(t, b, n1.id); v.Live || !v.Expires.IsZero() {
		t.Fatalf("n1 on B after removal: %+v", v)
	}
	if _, _, err := b.Register(context.Background(), p, n1.reg(t, 1, "10.0.0.1")); !errors.Is(err, ErrStaleSeq) {
		t.Fatalf("re-registering the removed record through B = %v, want ErrStaleSeq", err)
	}

	ch = b.Changed()
	if err := a.Free(context.Background(), admin, n2.id); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch)
	c.sync()
	if _, err := b.Node(admin, n2.id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("n2 on B after the administrator freed it: %v, want ErrNotFound", err)
	}
	var removed int
	for _, e := range b.Events(admin, 0) {
		if e.Kind == EventRemoved || e.Kind == EventFreed {
			removed++
		}
	}
	if removed != 2 {
		t.Fatalf("B recorded %d removals, want 2", removed)
	}
}

// A revocation through A reaches B: the credential is refused and the
// member's public node leaves other members' sets.
func TestSharedRevocationReachesB(t *testing.T) {
	c := newCluster(t, 2, false)
	a, b := c.regs[0], c.regs[1]
	c.addMember(a, "ma")
	credB := c.addMember(a, "mb")
	pa, pb := newNode(t, "ma", "public"), newNode(t, "mb", "public")
	c.register(a, pa, 1, "10.0.0.1")
	c.register(a, pb, 1, "10.0.1.1")
	c.sync()
	if _, err := b.Authenticate(credB.String()); err != nil {
		t.Fatalf("mb's credential on B: %v", err)
	}
	if ps, _ := b.PeersFor(Principal{Name: "ma"}, pa.id); len(ps.Static) != 1 {
		t.Fatalf("B's set for ma's public node = %v, want mb's public node", ps.Static)
	}

	ch := b.Changed()
	if _, err := a.RevokeMember(context.Background(), admin, "mb"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch)
	c.sync()
	if _, err := b.Authenticate(credB.String()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked credential on B: %v, want ErrRevoked", err)
	}
	if ps, _ := b.PeersFor(Principal{Name: "ma"}, pa.id); len(ps.Static) != 0 {
		t.Fatalf("B's set for ma's public node after mb's revocation = %v, want none", ps.Static)
	}
}

// Every write moves the writer's index once (its echo moves nothing) and the
// other replica's once when the write changes an answer, even when the
// writer writes the same key again before the first echo comes back.
func TestSharedEchoesBumpOnce(t *testing.T) {
	c := newCluster(t, 2, false)
	a, b := c.regs[0], c.regs[1]
	ctx := context.Background()
	p := Principal{Name: "m"}
	n := newNode(t, "m", "tx")
	check := func(name string, want uint64, write func()) {
		t.Helper()
		ia, ib := a.Index(), b.Index()
		write()
		c.sync()
		if da, db := a.Index()-ia, b.Index()-ib; da != want || db != want {
			t.Fatalf("%s: index moved by %d on the writer and %d on the other replica, want %d on both", name, da, db, want)
		}
	}
	check("add member", 1, func() { c.addMember(a, "m") })
	check("first registration", 1, func() { c.register(a, n, 1, "10.0.0.1") })
	check("repeated registration", 0, func() {
		c.clock.Advance(time.Second) // a longer lease, no new answer
		c.register(a, n, 1, "10.0.0.1")
	})
	check("renewal", 0, func() {
		c.clock.Advance(time.Second)
		if _, err := a.Renew(ctx, p, n.id, &Status{Head: 7}); err != nil {
			t.Fatal(err)
		}
		a.flush(ctx)
	})
	if v := nodeOf(t, b, n.id); v.Status == nil || v.Status.Head != 7 {
		t.Fatalf("status on B after A's renewal: %+v", v.Status)
	}
	check("changed record", 1, func() { c.register(a, n, 2, "10.0.0.9") })
	check("legacy post", 1, func() {
		en := enode.NewV4(&testutil.Key(t).PublicKey, net.ParseIP("10.0.0.7"), 30303, 30303).URLv4()
		if err := a.PostLegacy(ctx, "", en); err != nil {
			t.Fatal(err)
		}
	})
	if lv, _ := b.Legacy(nil, "default", true); len(lv.Enodes) != 1 {
		t.Fatalf("B's open-POST enodes = %v, want A's", lv.Enodes)
	}
	check("member's removal", 1, func() {
		if err := a.Remove(ctx, p, n.id); err != nil {
			t.Fatal(err)
		}
	})
	check("revocation", 1, func() {
		if _, err := a.RevokeMember(ctx, admin, "m"); err != nil {
			t.Fatal(err)
		}
	})

	// Writes to one key in a row, all before the first echo comes back:
	// a stale echo must neither bump nor take memory back.
	c.addMember(a, "d")
	c.sync()
	n2 := newNode(t, "d", "tx")
	ia, ib := a.Index(), b.Index()
	c.sts[0].hold(true)
	credX := c.addMember(a, "x")
	if _, err := a.RevokeMember(ctx, admin, "x"); err != nil {
		t.Fatal(err)
	}
	c.register(a, n2, 1, "10.0.2.1")
	c.register(a, n2, 2, "10.0.2.2")
	c.sts[0].hold(false)
	c.sync()
	if da, db := a.Index()-ia, b.Index()-ib; da != 4 || db != 4 {
		t.Fatalf("four writes moved the index by %d on the writer and %d on the other replica, want 4", da, db)
	}
	for i, r := range c.regs {
		if _, err := r.Authenticate(credX.String()); !errors.Is(err, ErrRevoked) {
			t.Fatalf("replica %d: revoked member authenticates: %v", i, err)
		}
		if v := nodeOf(t, r, n2.id); v.Seq != 2 {
			t.Fatalf("replica %d holds seq %d, want 2", i, v.Seq)
		}
	}
}

// A change carrying a record that does not verify is ignored: memory, the
// index and the node's answer stay as they were.
func TestSharedBadRecordIgnored(t *testing.T) {
	c := newCluster(t, 2, false)
	a, b := c.regs[0], c.regs[1]
	c.addMember(a, "m")
	n1 := newNode(t, "m", "tx")
	v := c.register(a, n1, 1, "10.0.0.1")
	c.sync()
	idx := b.Index()

	other := newNode(t, "m", "tx")
	now := c.clock.Now().Add(time.Hour)
	for _, sn := range []store.Node{
		// another key's record under n1's ID
		{ID: n1.id, Member: "m", Role: "tx", ENR: other.reg(t, 9, "10.9.9.9").ENR, Expires: now},
		// not a record
		{ID: other.id, Member: "m", Role: "tx", ENR: "enr:-garbage", Expires: now},
		// a public node without its public record
		{ID: n1.id, Member: "m", Role: "public", ENR: n1.reg(t, 9, "10.9.9.9").ENR, Expires: now},
	} {
		c.s.inject(store.Change{Node: &sn})
	}
	c.s.inject(store.Change{DeletedNode: "not-an-id"})
	c.sync()
	if b.Index() != idx {
		t.Fatal("a record that does not verify moved the index")
	}
	got := nodeOf(t, b, n1.id)
	if got.Enode != v.Enode || got.Role != "tx" || len(b.Nodes(admin)) != 1 {
		t.Fatalf("B after bad records: %+v, %d nodes", got, len(b.Nodes(admin)))
	}
}

// A new administrator hash written elsewhere replaces the old one.
func TestSharedAdminHashReachesB(t *testing.T) {
	c := newCluster(t, 2, false)
	b := c.regs[1]
	cred, _ := auth.New(auth.Admin)
	if err := c.sts[0].SetAdminHash(context.Background(), auth.Hash(cred.Secret)); err != nil {
		t.Fatal(err)
	}
	c.sync()
	if p, err := b.Authenticate(cred.String()); err != nil || !p.Admin {
		t.Fatalf("new administrator credential on B: %v", err)
	}
}

// The reaper's deletion of an open-POST enode reaches the other replica.
func TestSharedLegacyDeletionReachesB(t *testing.T) {
	c := newCluster(t, 2, false)
	a, b := c.regs[0], c.regs[1]
	en := enode.NewV4(&testutil.Key(t).PublicKey, net.ParseIP("10.0.0.7"), 30303, 30303).URLv4()
	if err := a.PostLegacy(context.Background(), "", en); err != nil {
		t.Fatal(err)
	}
	c.sync()
	c.clock.Advance(4 * time.Minute)
	idx := b.Index()
	a.Reap()
	c.sync()
	b.mu.RLock()
	left := len(b.legacy)
	b.mu.RUnlock()
	if left != 0 || b.Index() != idx+1 {
		t.Fatalf("after A reaped: B holds %d networks, index moved by %d; want 0, 1", left, b.Index()-idx)
	}
}
