package etcd

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/etcdserver/etcdtest"
	"github.com/consortium/consortium/internal/store"
)

// On three members: one down, everything works; two down, writes, reads
// and Ping fail within a few seconds with a clear store.ErrUnavailable;
// both back, writes work again and a watcher catches up.
func TestQuorumLossAndRecovery(t *testing.T) {
	phase := time.Now()
	lap := func(what string) {
		t.Logf("%s: %s", what, time.Since(phase).Round(time.Millisecond))
		phase = time.Now()
	}
	c := etcdtest.StartCluster(t, 3)
	lap("cluster started")
	ctx := context.Background()
	prefix := newPrefix(t)
	s, other := open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix)
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	node := func(id string) store.Node {
		return store.Node{ID: id, Member: "m", Role: "tx", ENR: "enr:" + id, Registered: now, Updated: now, Expires: now.Add(time.Minute)}
	}
	must(t, s.PutNode(ctx, node("01")))
	if _, err := other.Load(ctx); err != nil {
		t.Fatal(err)
	}
	w := watch(t, other, 0)

	c.Stop(0)
	lap("member 0 stopped")
	must(t, s.PutNode(ctx, node("02")))
	must(t, s.Renew(ctx, []store.Renewal{{ID: "01", Expires: now.Add(2 * time.Minute)}}))
	must(t, s.Ping(ctx))
	lap("written with one member down")

	c.Stop(1)
	lap("member 1 stopped")
	ops := []struct {
		name string
		f    func() error
	}{
		{"PutNode", func() error { return s.PutNode(ctx, node("03")) }},
		{"Renew", func() error { return s.Renew(ctx, []store.Renewal{{ID: "01", Expires: now}}) }},
		{"Ping", func() error { return s.Ping(ctx) }},
		{"Load", func() error { _, err := s.Load(ctx); return err }},
	}
	// Concurrently: each waits out the request timeout (3 s).
	var wg sync.WaitGroup
	for _, op := range ops {
		wg.Go(func() {
			start := time.Now()
			err := op.f()
			took := time.Since(start)
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("%s without a quorum: %v, want store.ErrUnavailable", op.name, err)
				return
			}
			if took > 5*time.Second {
				t.Errorf("%s failed after %s", op.name, took)
			}
			if msg := err.Error(); !strings.Contains(msg, "majority") {
				t.Errorf("%s: unclear error %q", op.name, msg)
			}
			t.Logf("%s after %s: %v", op.name, took.Round(time.Millisecond), err)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	lap("failed without a quorum")
	c.Start(0, 1)
	lap("members 0 and 1 restarted")
	must(t, s.PutNode(ctx, node("04")))
	lap("written after recovery")
	must(t, s.Ping(ctx))
	st, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A write that timed out without a quorum is not refused: it waits in
	// the surviving member's log and may be committed once the quorum is
	// back (03 and the renewal to now). Like any store error, "unavailable"
	// means "unknown outcome"; every replica converges through Watch.
	ids := map[string]store.Node{}
	for _, n := range st.Nodes {
		ids[n.ID] = n
	}
	_, has01 := ids["01"]
	_, has02 := ids["02"]
	_, has04 := ids["04"]
	exp := ids["01"].Expires
	if !has01 || !has02 || !has04 || len(ids) > 4 || !(exp.Equal(now.Add(2*time.Minute)) || exp.Equal(now)) {
		t.Fatalf("after recovery: %+v", st.Nodes)
	}
	// The watcher saw 02 and the renewal, may have reloaded during the
	// outage, and has 04.
	for {
		ch := w.next()
		if ch.Node != nil && ch.Node.ID == "04" {
			break
		}
		if ch.Reload != nil && len(ch.Reload.Nodes) == 3 {
			t.Log("the watcher reloaded after the outage")
			break
		}
	}
}
