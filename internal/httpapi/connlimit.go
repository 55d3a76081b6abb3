package httpapi

import (
	"container/list"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Connections are the registrar's scarcest resource: each holds a file
// descriptor and some memory, and an attacker needs nothing but TCP to open
// them. The limiter caps them overall and per client address, and when the
// cap is reached it makes room by closing the oldest connection that has
// not authenticated and is not serving a request, never a member's: a
// member's agent keeps its authenticated keep-alive connection, so its
// renewals go through whatever anonymous clients do, and a new connection
// of a member takes the place of an anonymous one. A member's own
// connections are capped too (MaxConnsPerMember): past it, its oldest idle
// one is closed, so no member can fill the server with them.
//
// Anonymous requests get "Connection: close" (see Server.ServeHTTP), so an
// anonymous connection lives for one request, or until ReadHeaderTimeout
// if it sends none.
//
// New connections from addresses members authenticated from recently have
// capacity reserved for them (reserve.go): at the cap, and while the
// kernel's accept queue is long.

// Connection limits and server timeouts: defaults of the fields of Config.
const (
	DefaultMaxConns          = 4096
	DefaultMaxConnsPerIP     = 1024
	DefaultMaxConnsPerMember = 2048
	DefaultMaxWatches        = 1024
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultIdleTimeout       = 30 * time.Second
	// maxScan bounds the connections looked at to make room, and
	// maxUnread the FIONREAD calls among them (both under the limiter's
	// lock, which every accept and every first request takes).
	maxScan   = 256
	maxUnread = 16
	// anonWriteTimeout bounds the answer to an anonymous request: a client
	// that does not read cannot hold a handler.
	anonWriteTimeout = 30 * time.Second
)

type connLimiter struct {
	max, maxPerIP, maxPerMember int
	now                         func() time.Time
	log                         *slog.Logger
	lastLog                     atomic.Int64 // unix ns of the last warning

	addrs                     *memberAddrs
	reserve, reservePerMember int

	mu        sync.Mutex
	total     int
	anon      *list.List            // anonymous connections, oldest first
	byIP      map[string]*list.List // anonymous connections per address, oldest first
	authd     map[string]*list.List // authenticated connections per principal, in the order they authenticated
	reserved  *list.List            // not yet authenticated, from members' addresses (in the reserve)
	pendingBy map[string]int        // reserved connections per member

	refused, shed, drained atomic.Uint64
}

type trackedConn struct {
	net.Conn
	l        *connLimiter
	ip       string
	accepted time.Time
	busy     atomic.Int32 // requests in a handler

	// addr is the remembered address entry to refresh on each
	// authenticated request (nil until authenticated, or if the set was
	// full).
	addr atomic.Pointer[memberAddr]

	// guarded by l.mu
	principal string // "" until the connection authenticates
	// reservedFor is the member whose reserve holds the connection until
	// it authenticates ("": it is anonymous).
	reservedFor string
	// authed is principal once set, read without the lock: every request
	// of an authenticated connection checks it.
	authed          atomic.Pointer[string]
	closed          bool
	inAll, inIP, in *list.Element
}

func newConnLimiter(max, maxPerIP, maxPerMember int, log *slog.Logger) *connLimiter {
	r := reserveFor(max)
	return &connLimiter{max: max, maxPerIP: maxPerIP, maxPerMember: maxPerMember, now: time.Now, log: log,
		addrs: newMemberAddrs(), reserve: r, reservePerMember: reservePerMemberFor(r),
		anon: list.New(), byIP: map[string]*list.List{}, authd: map[string]*list.List{},
		reserved: list.New(), pendingBy: map[string]int{}}
}

// warn tells the operator, at most every 10 s, that the limits are at work.
func (l *connLimiter) warn(now time.Time) {
	last := l.lastLog.Load()
	if now.UnixNano()-last < int64(10*time.Second) || !l.lastLog.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	l.mu.Lock()
	total, anon := l.total, l.anon.Len()
	l.mu.Unlock()
	l.log.Warn("connection limit reached: closing idle anonymous connections and refusing new ones over the limits",
		"open", total, "anonymous", anon, "max", l.max, "max_per_ip", l.maxPerIP,
		"refused_total", l.refused.Load(), "closed_to_make_room_total", l.shed.Load(),
		"closed_unread_accept_queue_long_total", l.drained.Load())
}

type limitedListener struct {
	net.Listener
	l       *connLimiter
	backlog backlogGauge // used by the accept loop only
}

// Accept returns the next connection within the limits. A connection over
// them is closed at once, unless an older idle one can be closed instead.
// While the accept queue is long, a connection from an address no member
// authenticated from recently is closed unread: closing costs the
// registrar far less than serving, so the queue drains, and the members'
// connections in it are reached soon.
func (ll *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		now := ll.l.now()
		ip := hostOf(c.RemoteAddr())
		member := ll.l.addrs.member(ip, now)
		if member == "" && ll.backlog.long() {
			ll.l.drained.Add(1)
			c.Close()
			ll.l.warn(now)
			continue
		}
		if tc := ll.l.admit(c, ip, member, now); tc != nil {
			return tc, nil
		}
	}
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// admit registers c, from ip, making room if it must; nil means c was
// refused (and closed). member is the member ip is remembered for, if any:
// c then goes to the reserve if that member's share of it has room.
func (l *connLimiter) admit(c net.Conn, ip, member string, now time.Time) *trackedConn {
	tc := &trackedConn{Conn: c, l: l, ip: ip, accepted: now}
	l.mu.Lock()
	if member != "" && l.pendingBy[member] < l.reservePerMember {
		if ok, v := l.admitReservedLocked(tc, member); ok {
			l.mu.Unlock()
			if v != nil {
				l.shed.Add(1)
				v.Conn.Close()
				l.warn(now)
			}
			return tc
		}
	}
	var victims []*trackedConn
	if q := l.byIP[tc.ip]; q != nil && q.Len() >= l.maxPerIP {
		v := l.victim(q)
		if v == nil {
			l.mu.Unlock()
			l.refused.Add(1)
			c.Close()
			l.warn(now)
			return nil
		}
		l.removeLocked(v)
		victims = append(victims, v)
	}
	if l.total >= l.max {
		v := l.victim(l.anon)
		if v == nil {
			l.mu.Unlock()
			l.refused.Add(1)
			c.Close()
			for _, v := range victims { // none: a victim above made room
				v.Conn.Close()
			}
			l.warn(now)
			return nil
		}
		l.removeLocked(v)
		victims = append(victims, v)
	}
	l.total++
	tc.inAll = l.anon.PushBack(tc)
	q := l.byIP[tc.ip]
	if q == nil {
		q = list.New()
		l.byIP[tc.ip] = q
	}
	tc.inIP = q.PushBack(tc)
	l.mu.Unlock()
	for _, v := range victims {
		l.shed.Add(1)
		v.Conn.Close()
	}
	if len(victims) > 0 {
		l.warn(now)
	}
	return tc
}

// admitReservedLocked admits tc into member's reserve: under the cap as
// any connection, at the cap in place of an idle anonymous one, and failing
// that within the reserve. v is the connection to close to make room.
// Must be called with mu held.
func (l *connLimiter) admitReservedLocked(tc *trackedConn, member string) (ok bool, v *trackedConn) {
	if l.total >= l.max {
		if v = l.victim(l.anon); v != nil {
			l.removeLocked(v)
		} else if l.total >= l.max+l.reserve {
			return false, nil
		}
	}
	l.total++
	tc.reservedFor = member
	tc.inAll = l.reserved.PushBack(tc)
	l.pendingBy[member]++
	return true, v
}

// unlistPendingLocked takes tc, not authenticated yet, out of the
// anonymous connections or the reserve. Must be called with mu held.
func (l *connLimiter) unlistPendingLocked(tc *trackedConn) {
	if m := tc.reservedFor; m != "" {
		l.reserved.Remove(tc.inAll)
		if l.pendingBy[m]--; l.pendingBy[m] <= 0 {
			delete(l.pendingBy, m)
		}
		tc.reservedFor = ""
		return
	}
	l.anon.Remove(tc.inAll)
	if q := l.byIP[tc.ip]; q != nil {
		q.Remove(tc.inIP)
		if q.Len() == 0 {
			delete(l.byIP, tc.ip)
		}
	}
}

// victim is the connection of q to close to make room: the oldest one not
// serving a request and with nothing unread (a silent or slow client, an
// idle keep-alive); failing that, the oldest one not serving a request. A
// legitimate client sends its request as soon as it connects (and on Linux
// is accepted only then), so until the server has read it, it is not
// chosen while a silent connection is there to close. It looks at
// maxScan candidates at most. Must be called with mu held.
func (l *connLimiter) victim(q *list.List) *trackedConn {
	var first *trackedConn
	checked, scanned := 0, 0
	for e := q.Front(); e != nil && scanned < maxScan && checked < maxUnread; e = e.Next() {
		scanned++
		tc := e.Value.(*trackedConn)
		if tc.busy.Load() != 0 {
			continue
		}
		checked++
		if first == nil {
			first = tc
		}
		if !unread(tc.Conn) {
			return tc
		}
	}
	return first
}

// removeLocked forgets tc. Must be called with mu held.
func (l *connLimiter) removeLocked(tc *trackedConn) {
	if tc.closed {
		return
	}
	tc.closed = true
	l.total--
	if tc.principal != "" {
		if q := l.authd[tc.principal]; q != nil {
			q.Remove(tc.in)
			if q.Len() == 0 {
				delete(l.authd, tc.principal)
			}
		}
		return
	}
	l.unlistPendingLocked(tc)
}

// authenticated moves tc out of the anonymous connections, to principal's:
// it no longer counts against its address and is never closed to make room
// for another client. Past the member's own cap, its oldest idle
// connection is closed; ok is false when none is idle (tc is then over the
// cap, and its request is refused).
func (tc *trackedConn) authenticated(principal string) (ok bool) {
	if p := tc.authed.Load(); p != nil {
		if a := tc.addr.Load(); a != nil {
			a.touch(tc.l.now())
		}
		return true // counted once, as its first credential's
	}
	l := tc.l
	now := l.now()
	if a := l.addrs.note(tc.ip, principal, now); a != nil {
		tc.addr.Store(a)
	}
	l.mu.Lock()
	if tc.closed || tc.principal == principal {
		l.mu.Unlock()
		return true
	}
	if tc.principal != "" {
		// Another credential on the same connection: counted once, as
		// the first one's.
		l.mu.Unlock()
		return true
	}
	q := l.authd[principal]
	if q == nil {
		q = list.New()
		l.authd[principal] = q
	}
	var v *trackedConn
	if q.Len() >= l.maxPerMember {
		if v = l.victim(q); v == nil {
			l.mu.Unlock()
			return false
		}
		l.removeLocked(v)
	}
	l.unlistPendingLocked(tc)
	tc.principal = principal
	tc.authed.Store(&principal)
	tc.in = q.PushBack(tc)
	l.mu.Unlock()
	if v != nil {
		l.shed.Add(1)
		v.Conn.Close()
	}
	return true
}

func (tc *trackedConn) Close() error {
	tc.l.mu.Lock()
	tc.l.removeLocked(tc)
	tc.l.mu.Unlock()
	return tc.Conn.Close()
}

type connKey struct{}

// connOf is the tracked connection a request came on; nil when the server
// was not set up by Prepare (tests that use the handler alone).
func connOf(ctx context.Context) *trackedConn {
	tc, _ := ctx.Value(connKey{}).(*trackedConn)
	return tc
}

// Prepare sets hs up to serve this API within its connection limits: it
// returns ln wrapped by the limiter, to pass to hs.Serve or hs.ServeTLS, and
// sets hs's ConnContext and, where they are zero, its ReadHeaderTimeout and
// IdleTimeout. Call it once, before serving.
func (s *Server) Prepare(hs *http.Server, ln net.Listener) net.Listener {
	if hs.ReadHeaderTimeout == 0 {
		hs.ReadHeaderTimeout = DefaultReadHeaderTimeout
	}
	if hs.IdleTimeout == 0 {
		hs.IdleTimeout = DefaultIdleTimeout
	}
	prev := hs.ConnContext
	hs.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if prev != nil {
			ctx = prev(ctx, c)
		}
		if t, ok := c.(*tls.Conn); ok {
			c = t.NetConn()
		}
		if tc, ok := c.(*trackedConn); ok {
			ctx = context.WithValue(ctx, connKey{}, tc)
		}
		return ctx
	}
	deferAccept(ln, hs.ReadHeaderTimeout)
	return &limitedListener{Listener: ln, l: s.conns, backlog: backlogGauge{ln: ln}}
}
