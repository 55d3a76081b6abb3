package httpapi_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
)

// limitedServer serves h's registry through a second API, set up by
// Prepare with cfg's connection limits and header timeout readHeader, on a
// real listener on 127.0.0.1: the connections it counts are then only the
// test's own, not those h.do set the members up with.
func limitedServer(t *testing.T, h *harness, cfg httpapi.Config, readHeader time.Duration) string {
	t.Helper()
	cfg.Registry = h.Registry
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httpapi.New(cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: readHeader}
	go hs.Serve(srv.Prepare(hs, ln))
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String()
}

// dialFrom opens a TCP connection to addr from the loopback address src
// (127.0.0.0/8 is all the host's), as a client with that address would.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// closedByServer reports whether the server closed c within d.
func closedByServer(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	return err == nil // EOF: io.Copy reports no error
}

// Each credential holds at most MaxWatches blocking queries; one more is
// 429 too_many_watches, and other members are not affected.
func TestBlockingQueriesCapPerMember(t *testing.T) {
	h := newHarness(t, opts{api: httpapi.Config{MaxWatches: 3}})
	a, b := consortium2(t, h)
	r := h.do("GET", "/v1/nodes/"+a.val.id+"/peers", a.cred, nil)
	q := "/v1/nodes/" + a.val.id + "/peers?index=" + r.hdr.Get("X-Consortium-Index") + "&wait=3s"
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); h.do("GET", q, a.cred, nil, "If-None-Match", r.hdr.Get("ETag")) }()
	}
	time.Sleep(300 * time.Millisecond)
	h.expect(h.do("GET", q, a.cred, nil, "If-None-Match", r.hdr.Get("ETag")), 429, "too_many_watches")
	// Not a blocking query (nothing to wait for): answered.
	h.expect(h.do("GET", "/v1/nodes/"+a.val.id+"/peers", a.cred, nil), 200, "")
	rb := h.do("GET", "/v1/nodes/"+b.val.id+"/peers", b.cred, nil)
	done := make(chan resp, 1)
	go func() {
		done <- h.do("GET", "/v1/nodes/"+b.val.id+"/peers?index="+rb.hdr.Get("X-Consortium-Index")+"&wait=200ms", b.cred, nil, "If-None-Match", rb.hdr.Get("ETag"))
	}()
	if res := <-done; res.status != http.StatusNotModified {
		t.Fatalf("another member's blocking query: %d %s", res.status, res.body)
	}
	wg.Wait()
	// The slots are given back when the queries end.
	h.expect(h.do("GET", strings.Replace(q, "wait=3s", "wait=100ms", 1), a.cred, nil, "If-None-Match", r.hdr.Get("ETag")), 304, "")
}

// Every route is rate-limited, unknown ones and /metrics included.
func TestEveryRouteIsRateLimited(t *testing.T) {
	h := newHarness(t, opts{api: httpapi.Config{RateLimit: 5, Burst: 5}})
	for _, path := range []string{"/nope", "/metrics", "/healthz", "/v1/whoami", "/v1/nodes/x/y/z"} {
		limited := false
		for range 20 {
			if r := h.do("GET", path, "", nil); r.status == http.StatusTooManyRequests {
				h.expect(r, 429, "rate_limited")
				limited = true
				break
			}
		}
		if !limited {
			t.Errorf("%s: 20 requests at once were all served", path)
		}
		time.Sleep(time.Second) // the bucket refills
	}
}

// An anonymous request is answered with Connection: close and its
// connection closed; a connection that sends nothing is closed after the
// header timeout; an authenticated connection is kept alive.
func TestAnonymousConnectionsAreShort(t *testing.T) {
	h := newHarness(t, opts{real: true})
	a, _ := consortium2(t, h)
	addr := limitedServer(t, h, httpapi.Config{}, 500*time.Millisecond)

	c := dialFrom(t, "127.0.0.1", addr)
	fmt.Fprintf(c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || res.StatusCode != 404 || !res.Close {
		t.Fatalf("anonymous request: %v %+v", err, res)
	}
	if !closedByServer(c, 2*time.Second) {
		t.Fatal("the anonymous connection was left open after its answer")
	}
	silent := dialFrom(t, "127.0.0.1", addr)
	start := time.Now()
	if !closedByServer(silent, 5*time.Second) || time.Since(start) > 3*time.Second {
		t.Fatalf("a silent connection was closed after %v, want about the header timeout", time.Since(start))
	}
	member := dialFrom(t, "127.0.0.1", addr)
	br := bufio.NewReader(member)
	for range 3 {
		fmt.Fprintf(member, "POST /v1/nodes/%s/renew HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 0\r\n\r\n", a.val.id, a.cred)
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != 200 || res.Close {
			t.Fatalf("member's renewal on a kept-alive connection: %v %+v", err, res)
		}
		io.Copy(io.Discard, res.Body)
	}
}

// At the connection cap, idle anonymous connections make room for new
// ones and members' connections are never closed for them; over the
// per-address cap, new anonymous connections are refused.
func TestConnectionCaps(t *testing.T) {
	h := newHarness(t, opts{real: true})
	a, _ := consortium2(t, h)
	addr := limitedServer(t, h, httpapi.Config{MaxConns: 40, MaxConnsPerIP: 15}, 30*time.Second)
	renew := func(c net.Conn, br *bufio.Reader) error {
		fmt.Fprintf(c, "POST /v1/nodes/%s/renew HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 0\r\n\r\n", a.val.id, a.cred)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		if res.StatusCode != 200 {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		return nil
	}
	member := dialFrom(t, "127.0.0.1", addr)
	mr := bufio.NewReader(member)
	if err := renew(member, mr); err != nil {
		t.Fatal(err)
	}
	// Connections that start a request and never finish its headers (a
	// silent one is not even accepted: TCP_DEFER_ACCEPT).
	slow := func(src string) net.Conn {
		c := dialFrom(t, src, addr)
		fmt.Fprintf(c, "GET / HTTP/1.1\r\n")
		time.Sleep(2 * time.Millisecond) // accepted in this order
		return c
	}
	// One address over its cap: its oldest connections make room.
	var flood []net.Conn
	for range 20 {
		flood = append(flood, slow("127.0.0.2"))
	}
	time.Sleep(100 * time.Millisecond)
	for i, c := range flood {
		if closed := closedByServer(c, 50*time.Millisecond); closed != (i < 5) {
			t.Fatalf("connection %d of 20 from one address (cap 15): closed %v", i, closed)
		}
	}
	// Many addresses past the total cap: the oldest make room.
	for i := range 60 {
		flood = append(flood, slow(fmt.Sprintf("127.0.1.%d", 1+i%6)))
	}
	time.Sleep(300 * time.Millisecond) // older than the guard
	for i := range 3 {
		if err := renew(member, mr); err != nil {
			t.Fatalf("renewal %d on the member's connection: %v", i, err)
		}
		fresh := dialFrom(t, "127.0.0.1", addr)
		if err := renew(fresh, bufio.NewReader(fresh)); err != nil {
			t.Fatalf("renewal %d on a new connection at the cap: %v", i, err)
		}
		fresh.Close()
	}
	open := 0
	for _, c := range flood {
		if !closedByServer(c, 20*time.Millisecond) {
			open++
		}
	}
	if open > 40 {
		t.Fatalf("%d anonymous connections still open, cap 40", open)
	}
}

// A member's own connections are capped: past the cap its oldest idle one
// is closed, so no member fills the server with idle connections.
func TestConnectionsPerMember(t *testing.T) {
	h := newHarness(t, opts{real: true})
	a, b := consortium2(t, h)
	addr := limitedServer(t, h, httpapi.Config{MaxConnsPerMember: 3}, 30*time.Second)
	whoami := func(c net.Conn, br *bufio.Reader, cred string) int {
		fmt.Fprintf(c, "GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", cred)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return 0
		}
		io.Copy(io.Discard, res.Body)
		return res.StatusCode
	}
	var conns []net.Conn
	for i := range 4 {
		c := dialFrom(t, "127.0.0.1", addr)
		if st := whoami(c, bufio.NewReader(c), a.cred); st != 200 {
			t.Fatalf("connection %d: %d", i, st)
		}
		conns = append(conns, c)
	}
	if !closedByServer(conns[0], time.Second) {
		t.Fatal("the member's oldest idle connection was not closed at its cap")
	}
	for i, c := range conns[1:] {
		if closedByServer(c, 50*time.Millisecond) {
			t.Fatalf("connection %d closed", i+1)
		}
	}
	// Another member is not affected.
	c := dialFrom(t, "127.0.0.1", addr)
	if st := whoami(c, bufio.NewReader(c), b.cred); st != 200 {
		t.Fatalf("another member: %d", st)
	}
}

// At the connection cap, with every anonymous connection in a handler
// (none can be closed to make room), a member's agent that authenticated
// from an address before still gets a new connection served, from the
// reserve; a client from an unknown address is refused.
func TestMembersNewConnectionsAtTheCap(t *testing.T) {
	h := newHarness(t, opts{real: true})
	a, _ := consortium2(t, h)
	release := make(chan struct{})
	var inHandler sync.WaitGroup
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inHandler.Done()
		<-release
	})
	addr := limitedServer(t, h, httpapi.Config{MaxConns: 8, Extra: map[string]http.Handler{"GET /slow": slow}}, 30*time.Second)
	t.Cleanup(func() { close(release) })
	// renew renews on a new connection from src. With untilClosed it
	// asks the server to close the connection and waits until it has: the
	// server forgets a connection before it closes it, so the connection
	// no longer counts against the cap when renew returns.
	renew := func(src string, untilClosed bool) error {
		c := dialFrom(t, src, addr)
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		closing := ""
		if untilClosed {
			closing = "Connection: close\r\n"
		}
		fmt.Fprintf(c, "POST /v1/nodes/%s/renew HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n%sContent-Length: 0\r\n\r\n", a.val.id, a.cred, closing)
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, res.Body)
		if res.StatusCode != 200 {
			return fmt.Errorf("status %d", res.StatusCode)
		}
		if untilClosed {
			if _, err := io.Copy(io.Discard, br); err != nil {
				return fmt.Errorf("waiting for the server to close: %w", err)
			}
		}
		return nil
	}
	// The member's agent has renewed from 127.0.0.5 before. Until the
	// server has closed that connection, it holds one of the 8 places,
	// and the eighth anonymous request below would be refused.
	if err := renew("127.0.0.5", true); err != nil {
		t.Fatal(err)
	}
	// Every place under the cap taken by an anonymous request in a handler.
	inHandler.Add(8)
	for i := range 8 {
		c := dialFrom(t, fmt.Sprintf("127.1.1.%d", 1+i), addr)
		fmt.Fprintf(c, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
		t.Cleanup(func() { c.Close() })
	}
	entered := make(chan struct{})
	go func() { inHandler.Wait(); close(entered) }()
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		t.Fatal("8 anonymous requests did not all reach a handler under a cap of 8")
	}
	stranger := dialFrom(t, "127.1.2.1", addr)
	fmt.Fprintf(stranger, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	stranger.SetReadDeadline(time.Now().Add(5 * time.Second))
	// Closed unread: a reset, or EOF; not an answer, not a timeout.
	if n, err := stranger.Read(make([]byte, 1)); n > 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a connection from an unknown address was admitted over the cap")
	}
	for i := range 3 {
		start := time.Now()
		if err := renew("127.0.0.5", false); err != nil {
			t.Fatalf("renewal %d on a new connection of the member at the cap: %v", i, err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("renewal %d took %v", i, d)
		}
	}
}
