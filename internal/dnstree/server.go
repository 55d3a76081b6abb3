package dnstree

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// AccessFunc says whether a query from src may read member's zone. The
// zone holds the member's private endpoints, so it must say yes only for
// the member's own networks.
type AccessFunc func(member string, src netip.Addr) bool

// LoopbackOnly lets only the registrar's own host read zones: the default,
// safe and useless until the operator names the members' networks.
func LoopbackOnly(_ string, src netip.Addr) bool { return src.Unmap().IsLoopback() }

// AllowAll lets anyone read every zone. Only for a server that nobody but
// one member's nodes can reach; the operator must ask for it explicitly.
func AllowAll(string, netip.Addr) bool { return true }

// AllowNets lets member M's zone be read from the prefixes nets[M], and
// from nowhere else (not even loopback).
func AllowNets(nets map[string][]netip.Prefix) AccessFunc {
	return func(member string, src netip.Addr) bool {
		src = src.Unmap()
		for _, p := range nets[member] {
			if p.Contains(src) {
				return true
			}
		}
		return false
	}
}

// ServerConfig tunes a Server. Zero values mean the defaults given per field.
type ServerConfig struct {
	// Access decides who may read which zone. Default LoopbackOnly.
	Access AccessFunc
	// RootTTL is the TTL of a tree's root and of negative answers: how long
	// a resolver between client and registrar may hold a stale root. Keep
	// it far below the client's own refresh (geth: 30 min). Default 60 s.
	RootTTL time.Duration
	// EntryTTL is the TTL of the hash-named entries, which never change.
	// Default 1 h.
	EntryTTL time.Duration
	// NS is the name server named in each zone's NS and SOA records.
	// Default "ns.nodes.<domain>.".
	NS string
	// RatePerSecond and RateBurst bound the packets one source (an IPv4
	// address or an IPv6 /64) gets answered; the rest are dropped unread,
	// before any decoding. Defaults 50 per second, burst 100: a geth
	// client asks at most 3 per second (dnsdisc's RateLimit).
	RatePerSecond float64
	RateBurst     int
	// MaxSources bounds the rate limiter's memory. Default 100,000.
	MaxSources int
	// MaxTCPConns and MaxTCPConnsPerSource bound the open TCP
	// connections, in all and from one source. Defaults 256 and 8.
	MaxTCPConns, MaxTCPConnsPerSource int
	// Now is the clock of the rate limiter. Default time.Now.
	Now func() time.Time
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

func (c ServerConfig) withDefaults(domain string) ServerConfig {
	if c.Access == nil {
		c.Access = LoopbackOnly
	}
	if c.RootTTL <= 0 {
		c.RootTTL = time.Minute
	}
	if c.EntryTTL <= 0 {
		c.EntryTTL = time.Hour
	}
	if c.NS == "" {
		c.NS = "ns.nodes." + domain
	}
	c.NS = dns.Fqdn(c.NS)
	if c.RatePerSecond <= 0 {
		c.RatePerSecond = 50
	}
	if c.RateBurst <= 0 {
		c.RateBurst = 100
	}
	if c.MaxSources <= 0 {
		c.MaxSources = 100_000
	}
	if c.MaxTCPConns <= 0 {
		c.MaxTCPConns = 256
	}
	if c.MaxTCPConnsPerSource <= 0 {
		c.MaxTCPConnsPerSource = 8
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server answers the trees' zones over DNS, authoritatively.
type Server struct {
	cfg   ServerConfig
	trees *Trees
	ttl   zoneTTLs
	lim   *limiter
	stats struct {
		out        [numOutcomes]atomic.Uint64
		limited    atomic.Uint64
		invalid    atomic.Uint64
		tcpRefused atomic.Uint64
	}
}

// NewServer returns a Server for trees; it serves once Serve is called.
func NewServer(trees *Trees, cfg ServerConfig) *Server {
	cfg = cfg.withDefaults(trees.cfg.Domain)
	return &Server{
		cfg:   cfg,
		trees: trees,
		ttl:   zoneTTLs{root: uint32(cfg.RootTTL / time.Second), entry: uint32(cfg.EntryTTL / time.Second), ns: cfg.NS},
		lim:   newLimiter(cfg.RatePerSecond, cfg.RateBurst, cfg.MaxSources),
	}
}

// Stats are the server's counters since start.
type Stats struct {
	Answers, NoData, NXDomain, Refused, Malformed uint64
	RateLimited                                   uint64 // packets (and TCP connections) dropped unread
	Undecodable                                   uint64 // packets that did not parse as DNS
	TCPRefused                                    uint64 // connections closed unread: over a connection bound
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	o := &s.stats.out
	return Stats{
		Answers: o[OutAnswer].Load(), NoData: o[OutNoData].Load(), NXDomain: o[OutNXDomain].Load(),
		Refused: o[OutRefused].Load(), Malformed: o[OutMalformed].Load(),
		RateLimited: s.stats.limited.Load(), Undecodable: s.stats.invalid.Load(), TCPRefused: s.stats.tcpRefused.Load(),
	}
}

// Listen binds addr for UDP and TCP on the same port (with port 0, the
// port UDP got). The CLI's --dns-listen; the sockets are Serve's to close.
func Listen(addr string) (*net.UDPConn, net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		ua, err := net.ResolveUDPAddr("udp", net.JoinHostPort(host, port))
		if err != nil {
			return nil, nil, err
		}
		pc, err := net.ListenUDP("udp", ua)
		if err != nil {
			return nil, nil, err
		}
		got := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)
		l, err := net.Listen("tcp", net.JoinHostPort(host, got))
		if err == nil {
			return pc, l, nil
		}
		pc.Close()
		if port != "0" || attempt == 5 {
			return nil, nil, err
		}
	}
}

// Serve answers queries on pc and l until ctx ends, then closes both. It
// returns ctx's end as nil, or the error that stopped a listener.
func (s *Server) Serve(ctx context.Context, pc *net.UDPConn, l net.Listener) error {
	mk := func() *dns.Server {
		return &dns.Server{
			Handler:        s,
			UDPSize:        dns.MinMsgSize, // a query needs no more; a longer datagram is cut and fails to parse
			ReadTimeout:    2 * time.Second,
			WriteTimeout:   2 * time.Second,
			IdleTimeout:    func() time.Duration { return 8 * time.Second },
			MaxTCPQueries:  128,
			DecorateReader: func(r dns.Reader) dns.Reader { return limitedReader{r, s} },
			MsgAcceptFunc:  accept,
			MsgInvalidFunc: func([]byte, error) { s.stats.invalid.Add(1) },
		}
	}
	udp, tcp := mk(), mk()
	udp.PacketConn = pc
	tcp.Listener = &tcpListener{Listener: l, s: s, max: s.cfg.MaxTCPConns, perSource: s.cfg.MaxTCPConnsPerSource, by: map[netip.Addr]int{}}
	errc := make(chan error, 2)
	go func() { errc <- udp.ActivateAndServe() }()
	go func() { errc <- tcp.ActivateAndServe() }()
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	udp.ShutdownContext(sctx)
	tcp.ShutdownContext(sctx)
	pc.Close()
	l.Close()
	return err
}

// accept is miekg's default check, stricter: a query carries no answer or
// authority records. A response (QR set) is dropped unanswered, so two
// servers can never bounce packets at each other.
func accept(h dns.Header) dns.MsgAcceptAction {
	if h.Ancount > 0 || h.Nscount > 0 {
		if h.Bits&(1<<15) != 0 {
			return dns.MsgIgnore
		}
		return dns.MsgReject
	}
	return dns.DefaultMsgAcceptFunc(h)
}

// ServeDNS implements dns.Handler.
func (s *Server) ServeDNS(w dns.ResponseWriter, req *dns.Msg) {
	src := addrOf(w.RemoteAddr())
	_, udp := w.RemoteAddr().(*net.UDPAddr)
	resp, out := answer(req, s.trees.cur.Load(), s.trees.suffix, func(member string) bool {
		return src.IsValid() && s.cfg.Access(member, src)
	}, s.ttl, udp)
	s.stats.out[out].Add(1)
	if err := w.WriteMsg(resp); err != nil {
		s.cfg.Logger.Debug("dns reply not sent", "err", err)
	}
}

func addrOf(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}

var errLimited = errors.New("dnstree: source over its rate limit")

// limitedReader drops a source's packets beyond its rate before they are
// decoded: no reply (not even FORMERR or REFUSED) goes to a flood, so the
// server cannot be used to amplify one.
type limitedReader struct {
	dns.Reader
	s *Server
}

func (r limitedReader) ReadUDP(conn *net.UDPConn, timeout time.Duration) ([]byte, *dns.SessionUDP, error) {
	for {
		m, sess, err := r.Reader.ReadUDP(conn, timeout)
		if err != nil || r.s.admit(sess.RemoteAddr()) {
			return m, sess, err
		}
	}
}

func (r limitedReader) ReadTCP(conn net.Conn, timeout time.Duration) ([]byte, error) {
	m, err := r.Reader.ReadTCP(conn, timeout)
	if err == nil && !r.s.admit(conn.RemoteAddr()) {
		return nil, errLimited // miekg closes the connection
	}
	return m, err
}

func (s *Server) admit(a net.Addr) bool {
	src := addrOf(a)
	if !src.IsValid() {
		return false
	}
	if s.lim.allow(src, s.cfg.Now()) {
		return true
	}
	s.stats.limited.Add(1)
	return false
}
