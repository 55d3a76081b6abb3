package registrarclient

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/testutil"
)

// The tests here resolve names through Go's own DNS client talking to a
// real DNS server on 127.0.0.1 (dnsServer) that answers, or, like Docker's
// DNS after a network cut, reads the queries and never answers.

// nameURL is r's URL with its address replaced by host, which dns answers
// with 127.0.0.1.
func nameURL(t *testing.T, r *replica, host string) string {
	t.Helper()
	u, err := url.Parse(r.url())
	if err != nil {
		t.Fatal(err)
	}
	return "http://" + host + ":" + u.Port()
}

func newResolvingClient(t *testing.T, dns *dnsServer, urls ...string) *Client {
	t.Helper()
	c, err := New(Config{URL: strings.Join(urls, ","), Credential: "acme.secret", AllowInsecure: true, Resolver: dns})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A URL whose name gets no answer costs its attempt LookupTimeout, and the
// next URL answers, well within the call's deadline.
func TestHungNameFailsOverToTheNextURL(t *testing.T) {
	dns := newDNSServer(t, true)
	r1, r2 := newReplica(t, healthy), newReplica(t, healthy)
	c := newResolvingClient(t, dns, nameURL(t, r1, "r1.registrar.test"), r2.url())
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Nodes(ctx)
	took := time.Since(start)
	t.Logf("answered by the second URL after %v", took)
	if err != nil {
		t.Fatal(err)
	}
	if got := hits(r1, r2); got[0] != 0 || got[1] != 1 || dns.queries.Load() == 0 {
		t.Fatalf("hits %v, DNS queries %d: want [0 1] and the name looked up", got, dns.queries.Load())
	}
	if took > 3*time.Second {
		t.Fatalf("took %v", took)
	}
	if c.URL() != r2.url() {
		t.Fatalf("current URL %s, want %s", c.URL(), r2.url())
	}
}

// Names that get no answer share the call's deadline with the URLs after
// them: with two such names before an address and 1.5 s in all, the address
// still answers (a dial bounded by DialTimeout alone spent 2 s on the two).
func TestHungNamesLeaveTimeForTheNextURL(t *testing.T) {
	dns := newDNSServer(t, true)
	r1, r2, r3 := newReplica(t, healthy), newReplica(t, healthy), newReplica(t, healthy)
	c := newResolvingClient(t, dns, nameURL(t, r1, "r1.registrar.test"), nameURL(t, r2, "r2.registrar.test"), r3.url())
	ctx, cancel := context.WithTimeout(t.Context(), 1500*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Renew(ctx, "n1", nil)
	t.Logf("answered by the third URL after %v", time.Since(start))
	if err != nil {
		t.Fatal(err)
	}
	if got := hits(r1, r2, r3); got[0] != 0 || got[1] != 0 || got[2] != 1 {
		t.Fatalf("hits %v, want [0 0 1]", got)
	}
}

// Once a name was answered, its address keeps serving while DNS does not
// answer: the registrar has not moved.
func TestLastAddressServesWhileDNSHangs(t *testing.T) {
	dns := newDNSServer(t, false)
	r1 := newReplica(t, healthy)
	c := newResolvingClient(t, dns, nameURL(t, r1, "r1.registrar.test"))
	if _, err := c.Nodes(t.Context()); err != nil {
		t.Fatal(err)
	}
	dns.hang.Store(true)
	c.names.mu.Lock()
	c.names.fresh = 0 // every dial asks DNS again
	c.names.mu.Unlock()
	for i := range 3 {
		c.hc.CloseIdleConnections() // so that each call dials
		before := dns.queries.Load()
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
		start := time.Now()
		_, err := c.Nodes(ctx)
		cancel()
		t.Logf("call %d with DNS hung: %v after %v", i+1, err, time.Since(start))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && dns.queries.Load() == before {
			t.Fatal("the name was not looked up again")
		}
		if i > 0 && time.Since(start) >= LookupTimeout {
			t.Fatal("waited for DNS again after a lookup went unanswered")
		}
	}
	if got := r1.hits.Load(); got != 4 {
		t.Fatalf("%d hits, want 4", got)
	}
}

// When DNS answers again, the next call gets the answer: a lookup still
// waiting on a query sent during the outage, which will never be answered,
// does not hold it back. Several calls wait at once during the outage, as an
// agent's renewal and watch do.
func TestNameResolvesOnceDNSAnswersAgain(t *testing.T) {
	dns := newDNSServer(t, true)
	r1 := newReplica(t, healthy)
	c := newResolvingClient(t, dns, nameURL(t, r1, "r1.registrar.test"))
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
			defer cancel()
			start := time.Now()
			_, err := c.Nodes(ctx)
			if !errors.Is(err, ErrUnreachable) || time.Since(start) > 3*time.Second {
				t.Errorf("with DNS hung: %v after %v", err, time.Since(start))
			}
		})
	}
	// Each call has a 4 s deadline.
	testutil.WaitGroup(t, time.Minute, "the calls made while DNS hung to return", &wg)
	dns.hang.Store(false)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Nodes(ctx)
	took := time.Since(start)
	t.Logf("answered %v after DNS came back", took)
	if err != nil {
		t.Fatal(err)
	}
	if took > time.Second {
		t.Fatalf("took %v", took)
	}
}

func TestLookupWait(t *testing.T) {
	for _, tc := range []struct {
		budget time.Duration // 0: no deadline
		left   int
		want   time.Duration
	}{
		{0, 1, LookupTimeout},
		{4 * time.Second, 1, LookupTimeout},
		{4 * time.Second, 3, LookupTimeout},
		{1500 * time.Millisecond, 3, 250 * time.Millisecond},
		{400 * time.Millisecond, 1, 200 * time.Millisecond},
		{-time.Second, 2, 0},
	} {
		ctx := t.Context()
		if tc.budget != 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, tc.budget)
			defer cancel()
		}
		if got := lookupWait(ctx, tc.left); got > tc.want || got < tc.want-50*time.Millisecond {
			t.Errorf("budget %v, %d URLs left: %v, want %v", tc.budget, tc.left, got, tc.want)
		}
	}
}
