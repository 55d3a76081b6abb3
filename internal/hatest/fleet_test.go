package hatest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/testutil"
)

// fleet runs agents until stop.
type fleet struct {
	agents []*agent
	// targets are the public keys (hex) of nodes the test waits for the
	// agents to see in their sets.
	targets atomic.Pointer[[]string]
	// gate lets one agent at a time decode a peer set, and the test stop
	// all decoding while it measures (holdDecoding). A real agent decodes
	// on its own machine; here a thousand share the test's two cores, and
	// JSON decoding under -race is slow (~10-30 ms for 500 peers): a
	// thousand answers decoded at once would take the cores from the
	// replicas and etcd whose delivery the test measures, and delay the
	// test's own goroutines that time it. Answers are timed when read,
	// before the gate.
	gate   chan struct{}
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// holdDecoding stops the agents from decoding 200 answers (they still read
// them) until releaseDecoding.
func (f *fleet) holdDecoding()    { f.gate <- struct{}{} }
func (f *fleet) releaseDecoding() { <-f.gate }

// addTarget makes the agents look for the node with public key pk.
func (f *fleet) addTarget(pk string) {
	var ts []string
	if p := f.targets.Load(); p != nil {
		ts = slices.Clone(*p)
	}
	ts = append(ts, pk)
	f.targets.Store(&ts)
}

// run registers every agent, at most 64 at a time, each starting its
// renewals once acknowledged. Once all are registered (so that the
// registrations do not wake a thousand watchers each) and every replica
// lists them, every agent learns its set's ETag and then keeps its
// blocking query open. run returns when every agent's query waits.
func (f *fleet) run(t testing.TB, rs []*replica, admin string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	t.Cleanup(f.stop)
	f.gate = make(chan struct{}, 1)
	for _, a := range f.agents {
		a.gate, a.targets = f.gate, &f.targets
	}
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for _, a := range f.agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			err := a.register(ctx)
			<-sem
			if err == nil {
				f.wg.Add(1)
				go func() { defer f.wg.Done(); a.renewLoop(ctx, ttl/3) }()
			}
		}()
	}
	wg.Wait()
	for _, a := range f.agents {
		if a.acked.IsZero() {
			t.Fatalf("agent %s never registered: %v", a.id[:12], errString(a.lastErr.Load()))
		}
	}
	// A replica learns the others' registrations through etcd: an ETag
	// read before it has them all would be stale at once.
	for _, r := range rs {
		testutil.Eventually(t, time.Minute, r.name+" listing every registration live", func() error {
			return listsLive(r, admin, len(f.agents))
		})
	}
	errs := make(chan error, len(f.agents))
	for _, a := range f.agents {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- a.firstRead(ctx, a.base, a.cred)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range f.agents {
		f.wg.Add(1)
		go func() { defer f.wg.Done(); a.watchLoop(ctx) }()
	}
	// Every agent's blocking query written and not answered: none is
	// still busy with an answer when the test starts to measure.
	testutil.Eventually(t, time.Minute, "every agent's blocking query waiting", func() error {
		waiting := 0
		for _, a := range f.agents {
			cs := a.callsSnapshot()
			if len(cs) > 0 && !cs[len(cs)-1].wrote.IsZero() && cs[len(cs)-1].bodyRead.IsZero() {
				waiting++
			}
		}
		if waiting != len(f.agents) {
			return fmt.Errorf("only %d of %d agents have a blocking query waiting", waiting, len(f.agents))
		}
		return nil
	})
}

// listsLive returns nil once r lists at least n live nodes, and otherwise
// how many it lists (or why it could not list them).
func listsLive(r *replica, admin string, n int) error {
	_, body, err := get(r.url()+"/v1/nodes", admin)
	if err != nil {
		return err
	}
	if live := bytes.Count(body, []byte(`"live":true`)); live < n {
		return fmt.Errorf("%s lists %d live nodes of %d", r.name, live, n)
	}
	return nil
}

func (f *fleet) stop() {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
}
