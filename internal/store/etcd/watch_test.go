package etcd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consortium/consortium/internal/etcdserver/etcdtest"
	"github.com/consortium/consortium/internal/store"
)

// watcher runs s.Watch until the test ends and hands its changes over.
type watcher struct {
	t    *testing.T
	ch   chan store.Change
	done chan error
}

func watch(t *testing.T, s *Store, slow time.Duration) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{t: t, ch: make(chan store.Change, 10000), done: make(chan error, 1)}
	go func() {
		w.done <- s.Watch(ctx, func(c store.Change) {
			time.Sleep(slow)
			w.ch <- c
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-w.done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	})
	return w
}

func (w *watcher) next() store.Change {
	w.t.Helper()
	select {
	case c := <-w.ch:
		return c
	case err := <-w.done:
		w.t.Fatalf("watch ended: %v", err)
	case <-time.After(10 * time.Second):
		w.t.Fatal("no change within 10s")
	}
	return store.Change{}
}

// none checks that nothing more arrives for a moment.
func (w *watcher) none() {
	w.t.Helper()
	select {
	case c := <-w.ch:
		w.t.Fatalf("unexpected change %s", describe(c))
	case <-time.After(200 * time.Millisecond):
	}
}

func describe(c store.Change) string {
	switch {
	case c.Node != nil:
		return fmt.Sprintf("node %+v", *c.Node)
	case c.DeletedNode != "":
		return "deleted node " + c.DeletedNode
	case c.Renewal != nil:
		return fmt.Sprintf("renewal %+v", *c.Renewal)
	case c.Member != nil:
		return fmt.Sprintf("member %+v", *c.Member)
	case c.AdminHash != "":
		return "admin " + c.AdminHash
	case c.Legacy != nil:
		return fmt.Sprintf("legacy %+v", *c.Legacy)
	case c.DeletedLegacy != nil:
		return fmt.Sprintf("deleted legacy %+v", *c.DeletedLegacy)
	case c.Reload != nil:
		return fmt.Sprintf("reload %+v", *c.Reload)
	}
	return "empty change"
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Writes through one store reach another store's Watch in commit order,
// each as one change with the stored fields: the node with its lease and
// status merged, renewals, deletions, members, the admin hash, legacy
// enodes.
func TestWatchEveryKind(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartCluster(t, 1)
	ctx := context.Background()
	prefix := newPrefix(t)
	a, b := open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix)
	if _, err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	w := watch(t, b, 0)

	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	n := store.Node{ID: "ab01", Member: "m", Role: "public", ENR: "enr:x", PublicENR: "enr:y",
		Registered: now, Updated: now, Expires: now.Add(time.Minute), Status: []byte(`{"head":1}`)}
	must(t, a.SetAdminHash(ctx, "h1"))
	must(t, a.PutMember(ctx, store.Member{Name: "m", Hash: "mh", Created: now}))
	must(t, a.PutNode(ctx, n))
	must(t, a.Renew(ctx, []store.Renewal{{ID: "ab01", Expires: now.Add(2 * time.Minute), Status: []byte(`{"head":2}`)}, {ID: "unknown", Expires: now}}))
	must(t, a.Renew(ctx, []store.Renewal{{ID: "ab01", Expires: now.Add(3 * time.Minute)}}))
	n2 := n
	n2.Expires, n2.Status = time.Time{}, nil // removed by its member
	must(t, a.PutNode(ctx, n2))
	must(t, a.DeleteNode(ctx, "ab01"))
	must(t, a.DeleteNode(ctx, "ab01")) // nothing to delete: no change
	must(t, a.PutLegacy(ctx, store.Legacy{Network: "net/1", Enode: "enode://1@127.0.0.1:30303", Expires: now}))
	must(t, a.DeleteLegacy(ctx, "net/1", "enode://1@127.0.0.1:30303"))
	must(t, a.PutMember(ctx, store.Member{Name: "m", Hash: "mh", Created: now, Revoked: true, RevokedAt: now}))

	var last int64
	check := func(ok bool, c store.Change) {
		t.Helper()
		if !ok {
			t.Fatalf("got %s", describe(c))
		}
		if c.Revision <= last {
			t.Fatalf("revision %d after %d", c.Revision, last)
		}
		last = c.Revision
	}
	ch := w.next()
	check(ch.AdminHash == "h1", ch)
	ch = w.next()
	check(ch.Member != nil && ch.Member.Name == "m" && ch.Member.Hash == "mh" && ch.Member.Created.Equal(now) && !ch.Member.Revoked, ch)
	ch = w.next()
	check(ch.Node != nil && ch.Node.ID == "ab01" && ch.Node.Member == "m" && ch.Node.Role == "public" && ch.Node.ENR == "enr:x" &&
		ch.Node.PublicENR == "enr:y" && ch.Node.Registered.Equal(now) && ch.Node.Updated.Equal(now) &&
		ch.Node.Expires.Equal(now.Add(time.Minute)) && string(ch.Node.Status) == `{"head":1}`, ch)
	ch = w.next()
	check(ch.Renewal != nil && ch.Renewal.ID == "ab01" && ch.Renewal.Expires.Equal(now.Add(2*time.Minute)) && string(ch.Renewal.Status) == `{"head":2}`, ch)
	ch = w.next()
	check(ch.Renewal != nil && ch.Renewal.ID == "ab01" && ch.Renewal.Expires.Equal(now.Add(3*time.Minute)) && ch.Renewal.Status == nil, ch)
	ch = w.next()
	check(ch.Node != nil && ch.Node.Expires.IsZero() && ch.Node.Status == nil, ch)
	ch = w.next()
	check(ch.DeletedNode == "ab01", ch)
	ch = w.next()
	check(ch.Legacy != nil && *ch.Legacy == store.Legacy{Network: "net/1", Enode: "enode://1@127.0.0.1:30303", Expires: now}, ch)
	ch = w.next()
	check(ch.DeletedLegacy != nil && ch.DeletedLegacy.Network == "net/1" && ch.DeletedLegacy.Enode == "enode://1@127.0.0.1:30303", ch)
	ch = w.next()
	check(ch.Member != nil && ch.Member.Revoked && ch.Member.RevokedAt.Equal(now), ch)
	w.none()
}

// A write committed between Load and Watch is delivered, and a store sees
// its own writes.
func TestWatchFromLoad(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartCluster(t, 1)
	ctx := context.Background()
	prefix := newPrefix(t)
	a, b := open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix)
	must(t, a.PutMember(ctx, store.Member{Name: "before"}))
	st, err := b.Load(ctx)
	if err != nil || len(st.Members) != 1 {
		t.Fatalf("load %+v %v", st, err)
	}
	must(t, a.PutMember(ctx, store.Member{Name: "between"}))
	w := watch(t, b, 0)
	if ch := w.next(); ch.Member == nil || ch.Member.Name != "between" {
		t.Fatalf("got %s", describe(ch))
	}
	must(t, b.PutMember(ctx, store.Member{Name: "own"}))
	if ch := w.next(); ch.Member == nil || ch.Member.Name != "own" {
		t.Fatalf("got %s", describe(ch))
	}

	// Without a Load, Watch starts with the whole state.
	fresh := open(t, c.Endpoints(), prefix)
	w2 := watch(t, fresh, 0)
	if ch := w2.next(); ch.Reload == nil || len(ch.Reload.Members) != 3 {
		t.Fatalf("got %s", describe(ch))
	}
}

// History compacted past the revision a Watch must start from: the watcher
// gets the current state as a Reload, then the changes after it.
func TestWatchCompactedReloads(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartCluster(t, 1)
	ctx := context.Background()
	prefix := newPrefix(t)
	a, b := open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix)
	must(t, a.SetAdminHash(ctx, "h"))
	if _, err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	must(t, a.PutMember(ctx, store.Member{Name: "m1"}))
	must(t, a.PutNode(ctx, store.Node{ID: "01", Member: "m1", Expires: now, Status: []byte(`{}`)}))
	resp, err := a.cli.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	w := watch(t, b, 0)
	ch := w.next()
	if ch.Reload == nil {
		t.Fatalf("got %s, want a reload", describe(ch))
	}
	st := ch.Reload
	if st.AdminHash != "h" || len(st.Members) != 1 || len(st.Nodes) != 1 || !st.Nodes[0].Expires.Equal(now) || string(st.Nodes[0].Status) != `{}` {
		t.Fatalf("reload %+v", st)
	}
	must(t, a.PutMember(ctx, store.Member{Name: "m2"}))
	if ch := w.next(); ch.Member == nil || ch.Member.Name != "m2" || ch.Revision <= resp.Header.Revision {
		t.Fatalf("got %s", describe(ch))
	}
	w.none()
}

// A slow consumer loses nothing: changes wait in the client's buffer.
func TestWatchSlowConsumer(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartCluster(t, 1)
	ctx := context.Background()
	prefix := newPrefix(t)
	a, b := open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix)
	must(t, a.PutNode(ctx, store.Node{ID: "01", Expires: time.UnixMilli(1)}))
	if _, err := b.Load(ctx); err != nil {
		t.Fatal(err)
	}
	w := watch(t, b, 2*time.Millisecond)
	const n = 150
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			for i := range n / 3 {
				must(t, a.PutLegacy(ctx, store.Legacy{Network: fmt.Sprint(g), Enode: fmt.Sprint(i)}))
			}
		})
	}
	for i := range n {
		must(t, a.Renew(ctx, []store.Renewal{{ID: "01", Expires: time.UnixMilli(int64(i + 2))}}))
	}
	wg.Wait()
	// A write that timed out on a busy machine is repeated (applying a
	// change is idempotent): a change may come twice in a row, but none is
	// lost or out of order.
	var last int64
	renewals := 0
	perNet := map[string]int{}
	for renewals < n || perNet["0"] < n/3 || perNet["1"] < n/3 || perNet["2"] < n/3 {
		ch := w.next()
		if ch.Revision <= last {
			t.Fatalf("revision %d after %d", ch.Revision, last)
		}
		last = ch.Revision
		switch {
		case ch.Renewal != nil:
			if ch.Renewal.Expires.Equal(time.UnixMilli(int64(renewals + 1))) {
				continue // repeated
			}
			renewals++
			if want := time.UnixMilli(int64(renewals + 1)); !ch.Renewal.Expires.Equal(want) {
				t.Fatalf("renewal %d: %v, want %v", renewals, ch.Renewal.Expires, want)
			}
		case ch.Legacy != nil:
			k := perNet[ch.Legacy.Network]
			if ch.Legacy.Enode == fmt.Sprint(k-1) {
				continue // repeated
			}
			if want := fmt.Sprint(k); ch.Legacy.Enode != want {
				t.Fatalf("legacy %+v, want enode %s", *ch.Legacy, want)
			}
			perNet[ch.Legacy.Network]++
		default:
			t.Fatalf("got %s", describe(ch))
		}
	}
	w.none()
}

// Watch returns once the store is closed, with an error that says so.
func TestWatchEndsOnClose(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartCluster(t, 1)
	s, err := Open(context.Background(), Config{Endpoints: c.Endpoints(), Prefix: newPrefix(t), Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Watch(context.Background(), func(store.Change) {}) }()
	time.Sleep(100 * time.Millisecond)
	s.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) || !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Watch returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch still running after Close")
	}
	if err := s.PutMember(context.Background(), store.Member{Name: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

// Three replicas initialising together: exactly one writes, once.
func TestInitIfEmptyRace(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartCluster(t, 1)
	ctx := context.Background()
	prefix := newPrefix(t)
	stores := []*Store{open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix)}
	won := make([]bool, len(stores))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, s := range stores {
		wg.Go(func() {
			<-start
			members := []store.Member{{Name: "a", Hash: fmt.Sprint("a", i)}, {Name: "b", Hash: fmt.Sprint("b", i)}}
			done, err := s.InitIfEmpty(ctx, fmt.Sprint("admin", i), members)
			if err != nil {
				t.Error(err)
			}
			won[i] = done
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, w := range won {
		if w {
			if winner >= 0 {
				t.Fatalf("stores %d and %d both initialised", winner, i)
			}
			winner = i
		}
	}
	if winner < 0 {
		t.Fatal("nobody initialised")
	}
	st, err := stores[0].Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.AdminHash != fmt.Sprint("admin", winner) || len(st.Members) != 2 ||
		st.Members[0].Hash != fmt.Sprint("a", winner) || st.Members[1].Hash != fmt.Sprint("b", winner) {
		t.Fatalf("state %+v, want store %d's", st, winner)
	}
	resp, err := stores[0].cli.Get(ctx, prefix+"members/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if kv.Version != 1 {
			t.Errorf("%s written %d times", kv.Key, kv.Version)
		}
	}
	if done, err := stores[1].InitIfEmpty(ctx, "late", nil); done || err != nil {
		t.Fatalf("late init: %v %v", done, err)
	}
}

// Renewals beyond one transaction's operations are split, and renewals of
// unknown or deleted nodes create nothing.
func TestRenewLargeBatch(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartCluster(t, 1)
	ctx := context.Background()
	prefix := newPrefix(t)
	s := open(t, c.Endpoints(), prefix)
	const n = 300
	var rs []store.Renewal
	for i := range n {
		id := fmt.Sprintf("%04x", i)
		rs = append(rs, store.Renewal{ID: id, Expires: time.UnixMilli(int64(1000 + i)), Status: []byte(fmt.Sprintf(`{"i":%d}`, i))})
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				must(t, s.PutNode(ctx, store.Node{ID: rs[i].ID, Expires: time.UnixMilli(1)}))
			}
		})
	}
	wg.Wait()
	must(t, s.DeleteNode(ctx, "0000"))
	rs = append(rs, store.Renewal{ID: "ffff", Expires: time.UnixMilli(5)})
	rs = append(rs, store.Renewal{ID: "0001", Expires: time.UnixMilli(7)}) // applied after the first: keeps its status
	must(t, s.Renew(ctx, rs))
	st, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Nodes) != n-1 {
		t.Fatalf("%d nodes", len(st.Nodes))
	}
	for i, nd := range st.Nodes {
		want := time.UnixMilli(int64(1000 + i + 1))
		if i == 0 {
			want = time.UnixMilli(7)
		}
		if !nd.Expires.Equal(want) || !bytes.Equal(nd.Status, []byte(fmt.Sprintf(`{"i":%d}`, i+1))) {
			t.Fatalf("node %s: %v %s", nd.ID, nd.Expires, nd.Status)
		}
	}
	for _, k := range []string{"leases/0000", "status/0000", "leases/ffff"} {
		resp, err := s.cli.Get(ctx, prefix+k)
		if err != nil || resp.Count != 0 {
			t.Fatalf("%s: %v %v", k, resp.Kvs, err)
		}
	}
}
