package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/store/sqlite"
)

// Registrations arriving together share store transactions (group
// commit), each answered only once its transaction committed: every one is
// in the store, and there were fewer transactions than registrations. Two
// registrations of one node in one batch are checked against each other.
func TestConcurrentRegistrationsShareTransactions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := Open(ctx, st, Config{TTL: time.Hour, FlushInterval: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.EnsureAdmin(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.AddMember(ctx, admin, "m"); err != nil {
		t.Fatal(err)
	}
	const workers, each = 32, 12
	nodes := make([][]*tnode, workers)
	for w := range nodes {
		for range each {
			nodes[w] = append(nodes[w], newNode(t, "m", "tx"))
		}
	}
	// One node registered by every worker at once with the same seq and
	// different endpoints: exactly one wins, the others are stale.
	contested := newNode(t, "m", "tx")
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	var contestedOK sync.Map
	start := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			<-start
			for i, n := range nodes[w] {
				if i == each/2 {
					ip := fmt.Sprintf("10.9.%d.1", w)
					if _, _, err := r.Register(ctx, Principal{Name: "m"}, contested.reg(t, 1, ip)); err == nil {
						contestedOK.Store(ip, true)
					}
				}
				if _, _, err := r.Register(ctx, Principal{Name: "m"}, n.reg(t, 1, fmt.Sprintf("10.%d.%d.1", w, i))); err != nil {
					errs <- err
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wins := 0
	contestedOK.Range(func(any, any) bool { wins++; return true })
	if wins != 1 {
		t.Fatalf("%d registrations of one seq with different endpoints were accepted, want 1", wins)
	}
	regs, batches := r.Stats().Registrations.Load(), r.Stats().RegistrationBatches.Load()
	t.Logf("%d registrations in %d transactions", regs, batches)
	if regs != workers*each+1 {
		t.Fatalf("%d registrations counted, want %d", regs, workers*each+1)
	}
	if batches >= regs {
		t.Fatalf("%d registrations took %d transactions: no group commit", regs, batches)
	}
	s, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Nodes) != workers*each+1 {
		t.Fatalf("%d nodes in the store, want %d", len(s.Nodes), workers*each+1)
	}
}
