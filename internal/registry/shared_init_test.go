package registry

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/store"
	"github.com/consortium/consortium/internal/testutil"
)

// Two replicas initialising at once: one administrator credential, one
// seed, and both end with the winner's state without waiting for the watch
// (no watch runs here).
func TestSharedInitRace(t *testing.T) {
	ctx := context.Background()
	for range 10 {
		c := &cluster{t: t, s: newSharedStore(), clock: testutil.NewClock()}
		r1, r2 := c.open(c.s.replica()), c.open(c.s.replica())
		var creds [2]auth.Credential
		var oks [2]bool
		var wg sync.WaitGroup
		for i, r := range []*Registry{r1, r2} {
			wg.Go(func() {
				var err error
				if creds[i], oks[i], err = r.EnsureAdmin(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if oks[0] == oks[1] {
			t.Fatalf("EnsureAdmin created %v, %v: want exactly one credential", oks[0], oks[1])
		}
		win := creds[0]
		if oks[1] {
			win = creds[1]
		}
		for i, r := range []*Registry{r1, r2} {
			if p, err := r.Authenticate(win.String()); err != nil || !p.Admin {
				t.Fatalf("replica %d refuses the administrator credential: %v", i, err)
			}
		}
	}

	for range 10 {
		c := &cluster{t: t, s: newSharedStore(), clock: testutil.NewClock()}
		r1, r2 := c.open(c.s.replica()), c.open(c.s.replica())
		var seeds [2]Seed
		var mcreds [2]auth.Credential
		for i := range seeds {
			ac, _ := auth.New(auth.Admin)
			mc, _ := auth.New("member" + string(rune('a'+i)))
			seeds[i] = Seed{AdminHash: auth.Hash(ac.Secret), Members: []SeedMember{{Name: mc.Principal, Hash: auth.Hash(mc.Secret)}}}
			mcreds[i] = mc
		}
		var errs [2]error
		var wg sync.WaitGroup
		for i, r := range []*Registry{r1, r2} {
			wg.Go(func() { errs[i] = r.ApplySeed(ctx, seeds[i]) })
		}
		wg.Wait()
		w := 0
		switch {
		case errs[0] == nil && errors.Is(errs[1], ErrAlreadyInitialised):
		case errs[1] == nil && errors.Is(errs[0], ErrAlreadyInitialised):
			w = 1
		default:
			t.Fatalf("ApplySeed = %v, %v: want one nil and one ErrAlreadyInitialised", errs[0], errs[1])
		}
		for i, r := range []*Registry{r1, r2} {
			if _, err := r.Authenticate(mcreds[w].String()); err != nil {
				t.Fatalf("replica %d refuses the winning seed's member: %v", i, err)
			}
			if _, err := r.Authenticate(mcreds[1-w].String()); err == nil {
				t.Fatalf("replica %d accepts the losing seed's member", i)
			}
			r.mu.RLock()
			h := r.adminHash
			r.mu.RUnlock()
			if h != seeds[w].AdminHash {
				t.Fatalf("replica %d holds another administrator hash than the winning seed's", i)
			}
			if _, ok, err := r.EnsureAdmin(ctx); ok || err != nil {
				t.Fatalf("EnsureAdmin after the seed = %v, %v; want no new credential", ok, err)
			}
		}
	}
}

// A store that fails makes writes fail with store.ErrUnavailable (503),
// leaving memory and the index alone; Ready reports it.
func TestSharedStoreDown(t *testing.T) {
	c := newCluster(t, 1, false)
	a := c.regs[0]
	ctx := context.Background()
	c.addMember(a, "m")
	idx := a.Index()
	c.s.setDown(true)
	n := newNode(t, "m", "tx")
	if _, _, err := a.Register(ctx, Principal{Name: "m"}, n.reg(t, 1, "10.0.0.1")); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Register with the store down = %v, want ErrUnavailable", err)
	}
	if _, err := a.AddMember(ctx, admin, "x"); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("AddMember with the store down = %v, want ErrUnavailable", err)
	}
	if err := a.Ready(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Ready with the store down = %v", err)
	}
	if a.Index() != idx || len(a.Nodes(admin)) != 0 {
		t.Fatal("a failed write changed memory")
	}
	c.s.setDown(false)
	fresh := c.open(c.s.replica())
	c.s.setDown(true)
	if _, _, err := fresh.EnsureAdmin(ctx); err != nil {
		t.Fatalf("EnsureAdmin with an administrator already loaded = %v", err)
	}
	c2 := &cluster{t: t, s: newSharedStore(), clock: testutil.NewClock()}
	r := c2.open(c2.s.replica())
	c2.s.setDown(true)
	if _, ok, err := r.EnsureAdmin(ctx); ok || !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("EnsureAdmin on a failing store = %v, %v; want ErrUnavailable", ok, err)
	}
}
