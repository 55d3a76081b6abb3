package httpapi

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"
)

func quietLimiter(max, maxPerIP, maxPerMember int) *connLimiter {
	return newConnLimiter(max, maxPerIP, maxPerMember, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func dialFromIP(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitQueue waits until ln's accept queue holds at least n connections.
func waitQueue(t *testing.T, ln net.Listener, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		q, ok := acceptQueue(ln)
		if !ok {
			t.Skip("the accept queue's length is not known on this system")
		}
		if q >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("accept queue %d, want %d", q, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// closedByPeer reports whether the server closed c (EOF or reset) within d.
func closedByPeer(c net.Conn, d time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// A member's new connection queued in the kernel behind a flood of
// anonymous ones: the accept loop closes the flood's unread and returns
// the member's among the first, instead of after every one of them. Once
// the queue is short, anonymous connections are served again.
func TestLongAcceptQueueIsDrainedForMembers(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the accept queue's length is read on Linux only")
	}
	const flood = 300
	l := quietLimiter(4096, 1024, 2048)
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	// Accept fails, rather than hangs, if a connection looked for is lost.
	raw.(*net.TCPListener).SetDeadline(time.Now().Add(time.Minute))
	ll := &limitedListener{Listener: raw, l: l, backlog: backlogGauge{ln: raw}}
	addr := raw.Addr().String()

	// The member authenticated from 127.0.0.5 before the flood.
	first := dialFromIP(t, "127.0.0.5", addr)
	c, err := ll.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if !c.(*trackedConn).authenticated("acme") {
		t.Fatal("not admitted as the member's")
	}
	c.Close()
	first.Close()

	var floods []net.Conn
	for i := range flood {
		fc := dialFromIP(t, fmt.Sprintf("127.1.0.%d", 1+i%30), addr)
		fmt.Fprintf(fc, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
		floods = append(floods, fc)
	}
	waitQueue(t, raw, flood)
	member := dialFromIP(t, "127.0.0.5", addr)
	fmt.Fprintf(member, "POST /v1/nodes/x/renew HTTP/1.1\r\nHost: x\r\n\r\n")
	waitQueue(t, raw, flood+1)

	served := map[string]bool{} // the flood's connections handed to the server, by client address
	for {
		c, err := ll.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if hostOf(c.RemoteAddr()) == "127.0.0.5" {
			break
		}
		served[c.RemoteAddr().String()] = true
	}
	// Served: the few before the gauge looked at the queue, and the last
	// ones, once it was short.
	if want := backlogEvery + backlogLow; len(served) > want {
		t.Fatalf("%d of %d anonymous connections queued before the member's were handed to the server, want at most %d",
			len(served), flood, want)
	}
	open := 0
	for _, fc := range floods {
		if !served[fc.LocalAddr().String()] && !closedByPeer(fc, 10*time.Millisecond) {
			open++
		}
	}
	if open > 0 {
		t.Fatalf("%d connections of the flood left open in the queue", open)
	}
	if n := l.drained.Load(); n != uint64(flood-len(served)) {
		t.Fatalf("%d connections counted as closed unread, want %d", n, flood-len(served))
	}

	// The queue is short again: an anonymous client is served.
	anon := dialFromIP(t, "127.1.0.99", addr)
	fmt.Fprintf(anon, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	for range 2 * backlogEvery {
		c, err := ll.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if hostOf(c.RemoteAddr()) == "127.1.0.99" {
			c.Close()
			return
		}
		c.Close()
	}
	t.Fatal("an anonymous connection was not served once the queue was short")
}

// pipe is one end of an in-memory connection, closed with the test.
func pipe(t *testing.T) net.Conn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return a
}

// At the connection cap, with every anonymous connection busy (none to
// close), a new connection from a member's address is admitted into the
// reserve, an anonymous one is refused; a member's share of the reserve
// is capped, and given back when its connections authenticate.
func TestReserveAtTheCap(t *testing.T) {
	l := quietLimiter(4, 1024, 2048)
	now := time.Now()
	l.addrs.note("10.0.0.5", "acme", now)
	for i := range 4 {
		tc := l.admit(pipe(t), fmt.Sprintf("10.1.0.%d", i), "", now)
		if tc == nil {
			t.Fatalf("anonymous connection %d refused under the cap", i)
		}
		tc.busy.Add(1) // in a handler: not closed to make room
	}
	if l.admit(pipe(t), "10.1.0.9", "", now) != nil {
		t.Fatal("an anonymous connection was admitted over the cap")
	}
	member := l.addrs.member("10.0.0.5", now)
	if member != "acme" {
		t.Fatalf("address remembered for %q", member)
	}
	var pending []*trackedConn
	for i := range l.reservePerMember {
		tc := l.admit(pipe(t), "10.0.0.5", member, now)
		if tc == nil {
			t.Fatalf("the member's connection %d refused at the cap (reserve %d, per member %d)", i, l.reserve, l.reservePerMember)
		}
		pending = append(pending, tc)
	}
	if l.admit(pipe(t), "10.0.0.5", member, now) != nil {
		t.Fatal("a member's pending connections took more than its share of the reserve")
	}
	// One authenticates: its place in the reserve is given back.
	if !pending[0].authenticated("acme") {
		t.Fatal("authentication refused")
	}
	if l.admit(pipe(t), "10.0.0.5", member, now) == nil {
		t.Fatal("the member's share was not given back when a connection authenticated")
	}
	// Another member's share is its own.
	l.addrs.note("10.0.0.6", "globex", now)
	if l.admit(pipe(t), "10.0.0.6", "globex", now) == nil {
		t.Fatal("another member's connection refused")
	}
	// Closing a pending connection gives its place back too.
	pending[1].Close()
	if l.admit(pipe(t), "10.0.0.5", member, now) == nil {
		t.Fatal("the member's share was not given back when a pending connection closed")
	}
}

// An address is remembered for memberAddrTTL after the last authenticated
// request from it, for the last member that authenticated from it; the set
// is bounded per member.
func TestMemberAddrs(t *testing.T) {
	s := newMemberAddrs()
	now := time.Now()
	a := s.note("10.0.0.5", "acme", now)
	if got := s.member("10.0.0.5", now.Add(memberAddrTTL-time.Second)); got != "acme" {
		t.Fatalf("within the TTL: %q", got)
	}
	if got := s.member("10.0.0.5", now.Add(memberAddrTTL)); got != "" {
		t.Fatalf("after the TTL: %q", got)
	}
	a.touch(now.Add(memberAddrTTL / 2))
	if got := s.member("10.0.0.5", now.Add(memberAddrTTL)); got != "acme" {
		t.Fatalf("refreshed by a request: %q", got)
	}
	s.note("10.0.0.5", "globex", now)
	if got := s.member("10.0.0.5", now); got != "globex" {
		t.Fatalf("the last member to authenticate from an address: %q", got)
	}
	if s.member("10.9.9.9", now) != "" {
		t.Fatal("an unknown address is a member's")
	}
	for i := range maxAddrsPerMember {
		if s.note(fmt.Sprintf("fd00::%x", i), "hostile", now) == nil {
			t.Fatalf("address %d of a member refused", i)
		}
	}
	if s.note("fd00::ffff:1", "hostile", now) != nil {
		t.Fatal("a member's addresses are not bounded")
	}
	if s.note("10.0.0.7", "acme", now) == nil {
		t.Fatal("another member's address refused")
	}
	// Expired addresses make room.
	if s.note("fd00::ffff:1", "hostile", now.Add(memberAddrTTL)) == nil {
		t.Fatal("expired addresses did not make room")
	}
}
