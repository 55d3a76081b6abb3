package registry

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/store/sqlite"
	"github.com/consortium/consortium/internal/testutil"
)

// A record whose lease ran out is kept for the retention, then deleted from
// memory and the store with a "purged" event; a live record, a lapsed one
// within the retention and a removed one stay.
func TestPurgeDeletesLapsedRecordsAfterTheRetention(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := testutil.NewClock()
	r, err := Open(ctx, st, Config{TTL: 30 * time.Second, Retention: time.Hour, FlushInterval: time.Hour, Now: clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.EnsureAdmin(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddMember(ctx, admin, "m"); err != nil {
		t.Fatal(err)
	}
	m := Principal{Name: "m"}
	reg := func(n *tnode) {
		t.Helper()
		if _, _, err := r.Register(ctx, m, n.reg(t, 1, "10.0.0.1")); err != nil {
			t.Fatal(err)
		}
	}
	dead, removed, late, alive := newNode(t, "m", "tx"), newNode(t, "m", "tx"), newNode(t, "m", "validator"), newNode(t, "m", "tx")
	reg(dead)
	reg(removed)
	if err := r.Remove(ctx, m, removed.id); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute) // dead's lease runs out
	r.Reap()
	clock.Advance(30 * time.Minute)
	reg(late)
	clock.Advance(time.Minute) // late's lease runs out, 30 min after dead's
	r.Reap()
	reg(alive)
	listed := func() map[string]bool {
		out := map[string]bool{}
		for _, v := range r.Nodes(admin) {
			out[v.ID] = true
		}
		return out
	}
	if n := r.Purge(ctx); n != 0 {
		t.Fatalf("purged %d records within the retention", n)
	}
	clock.Advance(30 * time.Minute) // dead lapsed 61 min ago, late 31 min ago
	if n := r.Purge(ctx); n != 1 {
		t.Fatalf("purged %d records, want 1", n)
	}
	got := listed()
	if got[dead.id] || !got[late.id] || !got[alive.id] || !got[removed.id] {
		t.Fatalf("after the purge the list has dead %v, late %v, alive %v, removed %v; want only dead gone", got[dead.id], got[late.id], got[alive.id], got[removed.id])
	}
	var purged int
	for _, e := range r.Events(admin, 0) {
		if e.Kind == EventPurged {
			purged++
			if e.Node != dead.id || e.Member != "m" {
				t.Errorf("purged event %+v, want node %s of m", e, dead.id)
			}
		}
	}
	if purged != 1 {
		t.Fatalf("%d purged events, want 1", purged)
	}
	// Gone from the store too: a restart does not bring it back.
	s, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sn := range s.Nodes {
		if sn.ID == dead.id {
			t.Fatal("the purged record is still in the store")
		}
	}
	// Its agent comes back: a new registration.
	reg(dead)
	if !listed()[dead.id] {
		t.Fatal("a purged node cannot register again")
	}
	// A negative retention keeps lapsed records.
	r.cfg.Retention = -1
	clock.Advance(48 * time.Hour)
	r.Reap()
	if n := r.Purge(ctx); n != 0 {
		t.Fatalf("a negative retention purged %d", n)
	}
}
