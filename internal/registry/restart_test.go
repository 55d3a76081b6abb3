package registry

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/store"
	"github.com/consortium/consortium/internal/testutil"
)

// plainStore is one registrar's own store (as SQLite is): the fake shared
// store without its Watcher, with a heartbeat.
type plainStore struct {
	store.Store
	mu    sync.Mutex
	alive time.Time
}

func (p *plainStore) Load(ctx context.Context) (*store.State, error) {
	s, err := p.Store.Load(ctx)
	if err == nil {
		p.mu.Lock()
		s.Alive = p.alive
		p.mu.Unlock()
	}
	return s, err
}

func (p *plainStore) SetAlive(ctx context.Context, t time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.alive = t
	return nil
}

// After a crash, a lease that ended while the registrar ran stays over; one
// that ended while it was down (its agent could not renew) gets a fresh TTL.
func TestRestartGraceOnlyForLeasesEndedWhileDown(t *testing.T) {
	ctx := context.Background()
	clock := testutil.NewClock()
	st := &plainStore{Store: newSharedStore().replica()}
	open := func() *Registry {
		r, err := Open(ctx, st, Config{TTL: 30 * time.Second, FlushInterval: time.Hour, Now: clock.Now,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := open()
	if _, _, err := r.EnsureAdmin(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddMember(ctx, admin, "m"); err != nil {
		t.Fatal(err)
	}
	p := Principal{Name: "m"}
	gone, running, down := newNode(t, "m", "tx"), newNode(t, "m", "tx"), newNode(t, "m", "tx")
	for i, n := range []*tnode{gone, running, down} {
		if _, _, err := r.Register(ctx, p, n.reg(t, 1, "10.0.0."+string(rune('1'+i)))); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(20 * time.Second)
	for _, n := range []*tnode{running, down} {
		if _, err := r.Renew(ctx, p, n.id, nil); err != nil {
			t.Fatal(err)
		}
	}
	clock.Advance(15 * time.Second) // gone's lease ended 5 s ago
	r.Reap()
	if _, err := r.Renew(ctx, p, running.id, nil); err != nil { // runs to +65 s
		t.Fatal(err)
	}
	r.tick(ctx) // renewals, then the heartbeat at +35 s
	clock.Advance(time.Second)
	// kill -9 at +36 s: down's lease ends at +50 s, running's at +65 s,
	// both while the registrar is down; it starts again at +120 s.
	clock.Advance(84 * time.Second)
	r2 := open()
	for n, want := range map[*tnode]bool{gone: false, running: true, down: true} {
		v, err := r2.Node(admin, n.id)
		if err != nil {
			t.Fatal(err)
		}
		if v.Live != want {
			t.Errorf("node %s after the restart: live %v, want %v", n.id[:8], v.Live, want)
		}
	}
	if _, err := r2.Renew(ctx, p, gone.id, nil); err == nil {
		t.Error("the lease that ended before the crash was renewed")
	}
}
