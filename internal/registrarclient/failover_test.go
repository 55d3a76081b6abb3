package registrarclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/testutil"
)

// replica is a fake registrar replica on 127.0.0.1 that counts requests and
// answers with the real wire types.
type replica struct {
	srv  *httptest.Server
	hits atomic.Int32

	mu   sync.Mutex
	last *http.Request // the last request
	body []byte        // and its body
}

func newReplica(t *testing.T, h http.HandlerFunc) *replica {
	t.Helper()
	r := &replica{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.hits.Add(1)
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.last, r.body = req, b
		r.mu.Unlock()
		h(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *replica) url() string { return r.srv.URL }

func (r *replica) lastRequest() (*http.Request, []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last, r.body
}

// deadURL is an address on 127.0.0.1 where nothing listens: connecting is
// refused at once.
func deadURL(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(http.NotFoundHandler())
	s.Close()
	return s.URL
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func answer(status int, code string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, status, api.ErrorBody{Error: http.StatusText(status), Code: code})
	}
}

var testSet = api.PeerSet{Index: 7, Node: "n1", Static: []string{"enode://aa@10.0.0.1:30303"}, Bootnodes: []string{}}

// healthy answers the calls the tests make as a registrar would.
func healthy(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == "GET" && r.URL.Path == "/v1/nodes":
		writeJSON(w, 200, api.NodeList{Nodes: []api.NodeView{{ID: "n1", Member: "acme", Role: "tx"}}})
	case r.Method == "POST" && r.URL.Path == "/v1/nodes":
		writeJSON(w, 201, api.RegisterResponse{NodeView: api.NodeView{ID: "n1", Member: "acme", Role: "tx"}, TTLSeconds: 30})
	case r.Method == "POST" && r.URL.Path == "/v1/nodes/n1/renew":
		writeJSON(w, 200, api.RenewResponse{ID: "n1", Expires: time.Now().Add(30 * time.Second), TTLSeconds: 30})
	case r.Method == "DELETE" && r.URL.Path == "/v1/nodes/n1":
		writeJSON(w, 200, map[string]string{"removed": "n1"})
	case r.Method == "POST" && r.URL.Path == "/v1/members":
		writeJSON(w, 201, api.MemberCreated{Name: "acme", Credential: "acme.secret", Created: time.Now()})
	case r.Method == "GET" && r.URL.Path == "/v1/nodes/n1/peers":
		w.Header().Set("ETag", `"set-7"`)
		w.Header().Set("X-Consortium-Index", "7")
		if r.Header.Get("If-None-Match") == `"set-7"` {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		writeJSON(w, 200, testSet)
	default:
		writeJSON(w, 404, api.ErrorBody{Error: "no route " + r.Method + " " + r.URL.Path, Code: api.CodeNotFound})
	}
}

func newClient(t *testing.T, urls ...string) *Client {
	t.Helper()
	c, err := New(Config{URL: strings.Join(urls, ","), Credential: "acme.secret"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func hits(rs ...*replica) []int32 {
	h := make([]int32, len(rs))
	for i, r := range rs {
		h[i] = r.hits.Load()
	}
	return h
}

// Each repeatable call, as the agent makes them.
var calls = []struct {
	name string
	do   func(ctx context.Context, c *Client) error
}{
	{"GET nodes", func(ctx context.Context, c *Client) error { _, err := c.Nodes(ctx); return err }},
	{"POST register", func(ctx context.Context, c *Client) error {
		_, err := c.Register(ctx, api.RegisterRequest{Role: "tx", ENR: "enr:-test"})
		return err
	}},
	{"POST renew", func(ctx context.Context, c *Client) error {
		_, err := c.Renew(ctx, "n1", &api.Status{Client: "Geth/v1", Head: 12})
		return err
	}},
	{"DELETE node", func(ctx context.Context, c *Client) error { return c.Remove(ctx, "n1") }},
	{"GET peers", func(ctx context.Context, c *Client) error { _, err := c.Peers(ctx, "n1"); return err }},
}

// With the first of three URLs refusing connections, every call is answered
// by the second, and the client stays there.
func TestRefusedURLIsSkipped(t *testing.T) {
	for _, call := range calls {
		t.Run(call.name, func(t *testing.T) {
			r2, r3 := newReplica(t, healthy), newReplica(t, healthy)
			dead := deadURL(t)
			c := newClient(t, dead, r2.url(), r3.url())
			for range 3 {
				if err := call.do(t.Context(), c); err != nil {
					t.Fatal(err)
				}
			}
			if got := hits(r2, r3); got[0] != 3 || got[1] != 0 {
				t.Fatalf("hits %v, want [3 0]", got)
			}
			if c.URL() != r2.url() {
				t.Fatalf("current URL %s, want %s", c.URL(), r2.url())
			}
		})
	}
}

// A replica answering 502/503/504 is skipped: the same request, body and
// all, reaches the next one.
func TestGatewayAndUnavailableAnswersAreSkipped(t *testing.T) {
	for _, status := range []int{502, 503, 504} {
		for _, call := range calls {
			t.Run(http.StatusText(status)+"/"+call.name, func(t *testing.T) {
				r1, r2, r3 := newReplica(t, answer(status, "store_unavailable")), newReplica(t, healthy), newReplica(t, healthy)
				c := newClient(t, r1.url(), r2.url(), r3.url())
				if err := call.do(t.Context(), c); err != nil {
					t.Fatal(err)
				}
				if got := hits(r1, r2, r3); got[0] != 1 || got[1] != 1 || got[2] != 0 {
					t.Fatalf("hits %v, want [1 1 0]", got)
				}
				q1, b1 := r1.lastRequest()
				q2, b2 := r2.lastRequest()
				if q1.Method != q2.Method || q1.URL.String() != q2.URL.String() || string(b1) != string(b2) ||
					q2.Header.Get("Authorization") != "Bearer acme.secret" {
					t.Fatalf("second replica got %s %s %q, first %s %s %q", q2.Method, q2.URL, b2, q1.Method, q1.URL, b1)
				}
				if c.URL() != r2.url() {
					t.Fatalf("current URL %s, want %s", c.URL(), r2.url())
				}
			})
		}
	}
}

// The register body that reached the second replica is the caller's.
func TestRegisterBodyReachesTheNextReplica(t *testing.T) {
	r1, r2 := newReplica(t, answer(503, "store_unavailable")), newReplica(t, healthy)
	c := newClient(t, r1.url(), r2.url())
	req := api.RegisterRequest{Role: "public", ENR: "enr:-private", PublicENR: "enr:-public"}
	if _, err := c.Register(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	_, b := r2.lastRequest()
	var got api.RegisterRequest
	if err := json.Unmarshal(b, &got); err != nil || got.Role != req.Role || got.ENR != req.ENR || got.PublicENR != req.PublicENR {
		t.Fatalf("second replica got %q (%v)", b, err)
	}
}

// Any other status is the registrar's answer, which another replica would
// give too: it is returned, and the client stays where it is.
func TestAnswersAreNotRetriedElsewhere(t *testing.T) {
	for _, tc := range []struct {
		status int
		code   string
	}{{400, "invalid"}, {401, "unauthenticated"}, {403, "not_owner"}, {404, "not_found"}, {409, "stale_seq"}, {413, "too_large"}, {429, "rate_limited"}, {500, "internal"}} {
		for _, call := range calls {
			t.Run(http.StatusText(tc.status)+"/"+call.name, func(t *testing.T) {
				r1, r2 := newReplica(t, answer(tc.status, tc.code)), newReplica(t, healthy)
				c := newClient(t, r1.url(), r2.url())
				err := call.do(t.Context(), c)
				var ae *APIError
				if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code {
					t.Fatalf("err %v, want HTTP %d %s", err, tc.status, tc.code)
				}
				if errors.Is(err, ErrUnreachable) {
					t.Fatalf("an answer reported as unreachable: %v", err)
				}
				if got := hits(r1, r2); got[0] != 1 || got[1] != 0 {
					t.Fatalf("hits %v, want [1 0]", got)
				}
				if c.URL() != r1.url() {
					t.Fatalf("moved to %s after an answer", c.URL())
				}
			})
		}
	}
}

// Creating a member is not repeatable: it goes to the next URL only when it
// never left. A 503 is returned (the next call goes elsewhere).
func TestAddMemberFailsOverOnlyWhenNeverSent(t *testing.T) {
	r2 := newReplica(t, healthy)
	c := newClient(t, deadURL(t), r2.url())
	if mc, err := c.AddMember(t.Context(), "acme"); err != nil || mc.Credential != "acme.secret" {
		t.Fatalf("refused first URL: %+v %v", mc, err)
	}

	r1, r2 := newReplica(t, answer(503, "store_unavailable")), newReplica(t, healthy)
	c = newClient(t, r1.url(), r2.url())
	if _, err := c.AddMember(t.Context(), "acme"); !IsStatus(err, 503) {
		t.Fatalf("503: err %v", err)
	}
	if got := hits(r1, r2); got[0] != 1 || got[1] != 0 {
		t.Fatalf("hits %v, want [1 0]: the creation was sent twice", got)
	}
	if c.URL() != r2.url() {
		t.Fatalf("current URL %s, want %s", c.URL(), r2.url())
	}
	if _, err := c.AddMember(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
}

// With every URL down the error wraps ErrUnreachable and names each URL.
func TestAllURLsDown(t *testing.T) {
	dead := []string{deadURL(t), deadURL(t), deadURL(t)}
	c := newClient(t, dead...)
	start := time.Now()
	_, err := c.Nodes(t.Context())
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err %v, want ErrUnreachable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("three refused URLs took %v", d)
	}
	var fe *FailoverError
	if !errors.As(err, &fe) || len(fe.Tried) != 3 {
		t.Fatalf("err %#v, want a FailoverError of 3 attempts", err)
	}
	for i, u := range dead {
		if fe.Tried[i].URL != u || !strings.Contains(err.Error(), u) {
			t.Fatalf("attempt %d is %s, want %s; message %q", i, fe.Tried[i].URL, u, err)
		}
	}
	t.Log(err)
	if c.URL() != dead[0] {
		t.Fatalf("after a full circle the current URL is %s, want %s", c.URL(), dead[0])
	}

	// Down in different ways: refused, 503, 502.
	r2, r3 := newReplica(t, answer(503, "store_unavailable")), newReplica(t, answer(502, ""))
	c = newClient(t, deadURL(t), r2.url(), r3.url())
	_, err = c.Register(t.Context(), api.RegisterRequest{Role: "tx", ENR: "enr:-x"})
	if !errors.Is(err, ErrUnreachable) || !IsStatus(err, 503) || !errors.As(err, &fe) || len(fe.Tried) != 3 {
		t.Fatalf("err %v", err)
	}
	if !strings.Contains(err.Error(), r2.url()+": registrar: Service Unavailable (HTTP 503 store_unavailable)") {
		t.Fatalf("message %q", err)
	}
}

// One URL behaves as before failover: the transport error or the 503 alone.
func TestSingleURLErrorsAreUnchanged(t *testing.T) {
	dead := deadURL(t)
	c := newClient(t, dead)
	_, err := c.Nodes(t.Context())
	var fe *FailoverError
	if !errors.Is(err, ErrUnreachable) || errors.As(err, &fe) || !strings.HasPrefix(err.Error(), "registrar unreachable: Get \""+dead+"/v1/nodes\"") {
		t.Fatalf("err %v", err)
	}
	r := newReplica(t, answer(503, "store_unavailable"))
	c = newClient(t, r.url())
	_, err = c.Nodes(t.Context())
	if ae, ok := err.(*APIError); !ok || ae.Status != 503 {
		t.Fatalf("err %#v, want the *APIError itself", err)
	}
	if c.URL() != r.url() || r.hits.Load() != 1 {
		t.Fatalf("current %s, hits %d", c.URL(), r.hits.Load())
	}
}

// The client stays on the URL that last answered (no going back to the
// first when it recovers), and moves on, round the list, only on failures.
func TestStaysOnTheURLThatAnswered(t *testing.T) {
	var failed atomic.Bool
	r1 := newReplica(t, func(w http.ResponseWriter, r *http.Request) {
		if failed.CompareAndSwap(false, true) {
			answer(503, "store_unavailable")(w, r)
			return
		}
		healthy(w, r)
	})
	r2, r3 := newReplica(t, healthy), newReplica(t, healthy)
	c := newClient(t, r1.url(), r2.url(), r3.url())
	for range 5 {
		if _, err := c.Nodes(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := hits(r1, r2, r3); got[0] != 1 || got[1] != 5 || got[2] != 0 {
		t.Fatalf("hits %v, want [1 5 0]", got)
	}
	r2.srv.Close()
	if _, err := c.Nodes(t.Context()); err != nil || c.URL() != r3.url() {
		t.Fatalf("after the second died: %v, current %s", err, c.URL())
	}
	r3.srv.Close()
	if _, err := c.Nodes(t.Context()); err != nil || c.URL() != r1.url() {
		t.Fatalf("after the third died: %v, current %s", err, c.URL())
	}
	if got := hits(r1); got[0] != 2 {
		t.Fatalf("first replica hits %d, want 2", got[0])
	}
}

// Requests failing at once on the same URL move the client one step, not
// one step each.
func TestConcurrentFailuresMoveOneStep(t *testing.T) {
	const n = 16
	var arrived atomic.Int32
	release := make(chan struct{})
	r1 := newReplica(t, func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == n {
			close(release)
		}
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
		answer(503, "store_unavailable")(w, r)
	})
	r2, r3 := newReplica(t, healthy), newReplica(t, healthy)
	c := newClient(t, r1.url(), r2.url(), r3.url())
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, err := c.Nodes(t.Context())
			errs <- err
		})
	}
	// Each call waits at most 5 s at r1, then goes to r2.
	testutil.WaitGroup(t, time.Minute, fmt.Sprintf("%d concurrent calls during r1's failures to return", n), &wg)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := hits(r1, r2, r3); got[0] != n || got[1] != n || got[2] != 0 || c.URL() != r2.url() {
		t.Fatalf("hits %v, current %s; want [%d %d 0] on %s", got, c.URL(), n, n, r2.url())
	}
}

// The caller's deadline running out on a hung replica moves the client on;
// the caller's cancellation does not.
func TestContextEnds(t *testing.T) {
	hung := func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
	r1, r2 := newReplica(t, hung), newReplica(t, healthy)
	c := newClient(t, r1.url(), r2.url())
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Nodes(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want DeadlineExceeded", err)
	}
	if c.URL() != r2.url() || r2.hits.Load() != 0 {
		t.Fatalf("current %s, second replica hits %d", c.URL(), r2.hits.Load())
	}

	r1, r2 = newReplica(t, hung), newReplica(t, healthy)
	c = newClient(t, r1.url(), r2.url())
	ctx, cancel = context.WithCancel(t.Context())
	time.AfterFunc(100*time.Millisecond, cancel)
	if _, err := c.Nodes(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want Canceled", err)
	}
	if c.URL() != r1.url() || r2.hits.Load() != 0 {
		t.Fatalf("current %s, second replica hits %d", c.URL(), r2.hits.Load())
	}
}
