package dnstree

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/registrartest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/miekg/dns"
)

// renewalTarget is the registrar's renewal latency target, p99
// (docs/benchmarks.md); the flood may not push renewals past it.
const renewalTarget = 20 * time.Millisecond

// TestFloodKeepsHTTPFast: the registrar's HTTP API (the real httpapi
// server on the real registry, SQLite) keeps its renewal latency while the
// DNS server in the same process takes a flood of 10,000 queries from one
// address, sent as fast as the socket takes them.
func TestFloodKeepsHTTPFast(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a latency measurement: not under -short or -race")
	}
	ctx := context.Background()
	// Manual: no write-behind beside the measurement, as before the shared
	// harness.
	h := registrartest.New(t, registrartest.Options{Registry: registry.Config{TTL: time.Hour}, Manual: true})
	r := h.Registry
	cred := h.AddMember(t, "acme")
	key := testutil.Key(t)
	if _, _, err := r.Register(ctx, registry.Principal{Name: "acme"}, registry.Registration{Role: "tx", ENR: testutil.ENR(t, key, 1, "10.1.0.1", 30303, 30303)}); err != nil {
		t.Fatal(err)
	}
	renewURL := h.URL + "/v1/nodes/" + testutil.ID(key) + "/renew"

	tr := newTrees(t, NewRegistrySource(r))
	if err := tr.Update(); err != nil {
		t.Fatal(err)
	}
	srv, addr := serve(t, tr, ServerConfig{})

	renewals := func(n int) []time.Duration {
		t.Helper()
		out := make([]time.Duration, 0, n)
		for range n {
			req, _ := http.NewRequest("POST", renewURL, nil)
			req.Header.Set("Authorization", "Bearer "+cred)
			start := time.Now()
			resp, err := h.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			out = append(out, time.Since(start))
			if resp.StatusCode != 200 {
				t.Fatalf("renewal: status %d", resp.StatusCode)
			}
			time.Sleep(2 * time.Millisecond)
		}
		return out
	}
	base := renewals(200)

	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The flood runs for as long as the renewals are measured, and for at
	// least 10,000 queries, paced only so that the kernel's socket buffer
	// does not drop them before the server reads them.
	stop := make(chan struct{})
	floodDone := make(chan int, 1)
	start := time.Now()
	go func() {
		q := new(dns.Msg)
		q.SetQuestion("acme.nodes.example.", dns.TypeTXT)
		i := 0
		for ; ; i++ {
			if i >= 10_000 {
				select {
				case <-stop:
					floodDone <- i
					return
				default:
				}
			}
			q.Id = uint16(i)
			b, _ := q.Pack()
			conn.Write(b)
			if i%50 == 49 {
				time.Sleep(time.Millisecond)
			}
		}
	}()
	var drained sync.WaitGroup
	drained.Add(1)
	go func() { // read the answers, so the flood is not slowed by a full socket
		defer drained.Done()
		buf := make([]byte, 2048)
		for {
			if _, err := conn.Read(buf); errors.Is(err, net.ErrClosed) {
				return
			}
		}
	}()
	during := renewals(200)
	close(stop)
	sent := testutil.Wait(t, stopLimit, "the flood to stop", floodDone)
	took := time.Since(start)
	conn.Close()
	testutil.WaitGroup(t, stopLimit, "the answers' reader to stop after its socket closed", &drained)
	st2 := srv.Stats()
	p := func(ds []time.Duration, q float64) time.Duration {
		s := slices.Clone(ds)
		slices.Sort(s)
		return s[int(q*float64(len(s)-1))]
	}
	t.Logf("renewal latency p50/p99: %v/%v before, %v/%v during a flood of DNS queries from one address (%d sent in %v; %d answered, %d dropped by the limit)",
		p(base, .5).Round(10*time.Microsecond), p(base, .99).Round(10*time.Microsecond),
		p(during, .5).Round(10*time.Microsecond), p(during, .99).Round(10*time.Microsecond),
		sent, took.Round(time.Millisecond), st2.Answers, st2.RateLimited)
	// A busy 2-core machine can miss the target with no flood at all; what
	// this test holds the flood to is the target, or twice the p99 measured
	// just before it on the same machine, whichever is larger.
	if got, bound := p(during, .99), max(renewalTarget, 2*p(base, .99)); got > bound {
		t.Errorf("renewal p99 %v during the flood, bound %v (target %v, p99 before %v)", got, bound, renewalTarget, p(base, .99))
	}
}
