package hatest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/ctxtime"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/registry"
)

// Simulated agents: each registers its node, renews every TTL/3 and keeps a
// blocking query open on its node's peer set, as internal/agent does, through
// its own registrarclient.Client configured with every replica's URL. They
// record every blocking query they make (call), so that a test can tell
// where each one went and when its answer arrived.

// watchWait is the agents' blocking-query wait (internal/agent's default).
const watchWait = 60 * time.Second

// retryMin and retryMax bound an agent's backoff after a failed call, as
// internal/agent's defaults do.
const (
	retryMin = 250 * time.Millisecond
	retryMax = 2 * time.Second
)

// agent is one simulated agent.
type agent struct {
	*node
	home int    // index of the replica its URL list starts with
	base string // that replica's URL
	cred string // its member's credential
	cl   *registrarclient.Client

	targets *atomic.Pointer[[]string] // fleet.targets
	gate    chan struct{}             // fleet.gate

	mu    sync.Mutex
	calls []*call
	etag  string
	index uint64
	peers int       // size of the last set received (0 before the first 200)
	acked time.Time // registration acknowledged

	lastRenew   atomic.Pointer[renewNote] // the last renewal answered 200
	firstLost   atomic.Pointer[lostNote]  // the first renewal answered 404
	renewals    atomic.Int64
	renewErrs   atomic.Int64
	renewLost   atomic.Int64 // renewals answered 404: the lease had lapsed
	reRegisters atomic.Int64
	lastErr     atomic.Pointer[string]
}

// renewNote is when a renewal was answered, and by which replica.
type renewNote struct {
	at  time.Time
	url string
}

// lostNote is a renewal answered 404, and the renewal before it.
type lostNote struct {
	at   time.Time
	url  string
	prev *renewNote
}

// newAgent makes an agent whose client tries the replicas in order starting
// at home.
func newAgent(t testing.TB, n *node, home int, rs []*replica, cred string) *agent {
	t.Helper()
	var us []string
	for k := range rs {
		us = append(us, rs[(home+k)%len(rs)].url())
	}
	cl, err := registrarclient.New(registrarclient.Config{URL: strings.Join(us, ","), Credential: cred, HTTPClient: agentHTTPClient()})
	if err != nil {
		t.Fatal(err)
	}
	return &agent{node: n, home: home, cl: cl, cred: cred, base: rs[home].url()}
}

func (a *agent) noteErr(err error) {
	s := err.Error()
	a.lastErr.Store(&s)
}

// register registers the agent's node until it is acknowledged or ctx ends.
func (a *agent) register(ctx context.Context) error {
	backoff := retryMin
	for {
		rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		_, err := a.cl.Register(rctx, a.req)
		cancel()
		if err == nil {
			a.mu.Lock()
			a.acked = time.Now()
			a.mu.Unlock()
			return nil
		}
		a.noteErr(err)
		if !ctxtime.Sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, retryMax)
	}
}

// renewLoop renews every TTL/3 and registers again after a 404.
func (a *agent) renewLoop(ctx context.Context, first time.Duration) {
	if !ctxtime.Sleep(ctx, first) {
		return
	}
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		a.mu.Lock()
		st := &registry.Status{Client: "Geth/v1.17.10-stable/linux-amd64/go1.26", Head: uint64(time.Now().Unix()), Peers: a.peers}
		a.mu.Unlock()
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := a.cl.Renew(rctx, a.id, st)
		cancel()
		switch {
		case ctx.Err() != nil:
			return
		case err == nil:
			a.renewals.Add(1)
			a.lastRenew.Store(&renewNote{at: time.Now(), url: a.cl.URL()})
		case registrarclient.IsStatus(err, http.StatusNotFound):
			if a.renewLost.Add(1) == 1 {
				prev := a.lastRenew.Load()
				a.firstLost.Store(&lostNote{at: time.Now(), url: a.cl.URL(), prev: prev})
			}
			a.noteErr(err)
			a.reRegisters.Add(1)
			a.register(ctx)
		default:
			a.renewErrs.Add(1)
			a.noteErr(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// firstRead learns the agent's ETag and index from its home replica with a
// format=bootnodes read: the same ETag as the JSON set's, and a small body
// (decoding a thousand JSON sets under -race would take the test's cores
// for half a minute).
func (a *agent) firstRead(ctx context.Context, base, cred string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/v1/nodes/"+a.id+"/peers?format=bootnodes", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("first read of %s: HTTP %d", a.id[:12], resp.StatusCode)
	}
	index, err := strconv.ParseUint(resp.Header.Get("X-Consortium-Index"), 10, 64)
	if err != nil || resp.Header.Get("ETag") == "" {
		return fmt.Errorf("first read of %s: no index or ETag", a.id[:12])
	}
	a.mu.Lock()
	a.index, a.etag = index, resp.Header.Get("ETag")
	a.mu.Unlock()
	return nil
}

// watchLoop keeps a blocking query open, sending the last answer's index
// and ETag, until ctx ends. After an error it waits retryMin (doubling), as
// internal/agent does; the client has already made the next replica current.
func (a *agent) watchLoop(ctx context.Context) {
	backoff := retryMin
	for ctx.Err() == nil {
		c := &call{gate: a.gate, targets: a.targets}
		a.mu.Lock()
		a.calls = append(a.calls, c)
		index, etag := a.index, a.etag
		a.mu.Unlock()
		wctx, cancel := context.WithTimeout(traced(ctx, c), watchWait+15*time.Second)
		p, err := a.cl.WatchPeers(wctx, a.id, index, etag, watchWait)
		cancel()
		now := time.Now()
		c.release()
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		c.returned = now
		c.err = err
		c.mu.Unlock()
		if err != nil {
			a.noteErr(err)
			if !ctxtime.Sleep(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, retryMax)
			continue
		}
		backoff = retryMin
		if p.NotModified {
			c.mu.Lock()
			c.status = http.StatusNotModified
			c.mu.Unlock()
			a.mu.Lock()
			if p.Index > 0 {
				a.index = p.Index
			}
			a.mu.Unlock()
			continue
		}
		c.mu.Lock()
		c.status, c.peers = http.StatusOK, len(p.Static)
		c.mu.Unlock()
		a.mu.Lock()
		a.index, a.etag, a.peers = p.Index, p.ETag, len(p.Static)
		a.mu.Unlock()
	}
}

// received is the first answer whose body held the node with public key
// (hex) pk.
func (a *agent) received(pk string) (callInfo, bool) {
	for _, c := range a.callsSnapshot() {
		if slices.Contains(c.found, pk) {
			return c, true
		}
	}
	return callInfo{}, false
}

// describe lists the agent's blocking queries written after since, for a
// failure message.
func (a *agent) describe(rs []*replica, since time.Time) string {
	var b strings.Builder
	rel := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%+.3fs", t.Sub(since).Seconds())
	}
	for _, c := range a.callsSnapshot() {
		if !c.wrote.IsZero() && c.wrote.Before(since) && !c.returned.IsZero() && c.returned.Before(since) {
			continue
		}
		fmt.Fprintf(&b, "\n      to %s wrote %s first byte %s read %s returned %s status %d found %d",
			replicaName(rs, c.addr), rel(c.wrote), rel(c.firstByte), rel(c.bodyRead), rel(c.returned), c.status, len(c.found))
		if c.err != nil {
			fmt.Fprintf(&b, " err %v", c.err)
		}
	}
	return b.String()
}

// callsSnapshot copies the agent's calls.
func (a *agent) callsSnapshot() []callInfo {
	a.mu.Lock()
	cs := append([]*call(nil), a.calls...)
	a.mu.Unlock()
	out := make([]callInfo, len(cs))
	for i, c := range cs {
		out[i] = c.snapshot()
	}
	return out
}

func errString(p *string) string {
	if p == nil {
		return "no error"
	}
	return *p
}
