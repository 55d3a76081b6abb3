package dnstree

import (
	"net"
	"net/netip"
	"sync"
)

// tcpListener bounds the TCP connections the server holds: all of them,
// and those of one source. Each connection also takes a token from the
// source's rate bucket. A connection over a bound is closed at once, before
// anything is read from it: a connection flood costs a file descriptor for
// a moment, not a goroutine waiting out a read timeout.
type tcpListener struct {
	net.Listener
	s              *Server
	max, perSource int

	mu    sync.Mutex
	total int
	by    map[netip.Addr]int
}

func (l *tcpListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := key(addrOf(c.RemoteAddr()))
		if !l.take(src) {
			c.Close()
			continue
		}
		if !l.s.admit(c.RemoteAddr()) {
			l.release(src)
			c.Close()
			continue
		}
		return &tcpConn{Conn: c, l: l, src: src}, nil
	}
}

// take counts a new connection from src unless a bound is reached; a
// refused one must not be released.
func (l *tcpListener) take(src netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max || l.by[src] >= l.perSource {
		l.s.stats.tcpRefused.Add(1)
		return false
	}
	l.total++
	l.by[src]++
	return true
}

func (l *tcpListener) release(src netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.by[src]--; l.by[src] <= 0 {
		delete(l.by, src)
	}
}

type tcpConn struct {
	net.Conn
	l    *tcpListener
	src  netip.Addr
	once sync.Once
}

func (c *tcpConn) Close() error {
	c.once.Do(func() { c.l.release(c.src) })
	return c.Conn.Close()
}
