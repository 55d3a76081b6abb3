package dnstree

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/dnsdisc"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/miekg/dns"
)

const testDomain = "example"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// waitLimit bounds a wait on another goroutine (Run, a server) rather than
// on a call's return.
const waitLimit = 10 * time.Second

// stopLimit bounds the wait for a goroutine told to stop (Run, Serve, a
// reader whose socket closed) to return: generous, as it only turns a
// regression's hang into a failure.
const stopLimit = time.Minute

// fakeSource is a Source the test sets member by member.
type fakeSource struct {
	mu      sync.Mutex
	version uint64
	nodes   map[string][]*enode.Node
	changed chan struct{}
	fail    map[string]error
}

func newFakeSource() *fakeSource {
	return &fakeSource{version: 1000, nodes: map[string][]*enode.Node{}, changed: make(chan struct{}), fail: map[string]error{}}
}

// set replaces member's answer (nil removes the member) and signals a change.
func (s *fakeSource) set(member string, nodes []*enode.Node) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if nodes == nil {
		delete(s.nodes, member)
	} else {
		s.nodes[member] = nodes
	}
	s.bumpLocked()
}

func (s *fakeSource) bump() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bumpLocked()
}

func (s *fakeSource) bumpLocked() {
	s.version++
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *fakeSource) Members() ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for m := range s.nodes {
		out = append(out, m)
	}
	slices.Sort(out)
	return out, nil
}

func (s *fakeSource) MemberRecords(m string) ([]*enode.Node, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.fail[m]; err != nil {
		return nil, 0, err
	}
	return slices.Clone(s.nodes[m]), s.version, nil
}

func (s *fakeSource) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// node signs a record for a new key at ip:port; extra adds that many
// bytes in an extra entry, to make records long.
func node(t testing.TB, ip string, port int, extra int) *enode.Node {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return nodeFor(t, key, ip, port, extra)
}

func nodeFor(t testing.TB, key *ecdsa.PrivateKey, ip string, port int, extra int) *enode.Node {
	t.Helper()
	var r enr.Record
	r.SetSeq(1)
	r.Set(enr.IP(net.ParseIP(ip)))
	r.Set(enr.TCP(port))
	r.Set(enr.UDP(port))
	if extra > 0 {
		r.Set(enr.WithEntry("pad", make([]byte, extra)))
	}
	if err := enode.SignV4(&r, key); err != nil {
		t.Fatal(err)
	}
	n, err := enode.New(enode.ValidSchemes, &r)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func testKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTrees(t testing.TB, src Source) *Trees {
	t.Helper()
	tr, err := New(src, Config{Domain: testDomain, Key: testKey(t), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// serve runs a Server for trees on 127.0.0.1 (UDP and TCP, one free port)
// until the test ends, and returns its address.
func serve(t testing.TB, trees *Trees, cfg ServerConfig) (*Server, string) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quiet
	}
	srv := NewServer(trees, cfg)
	pc, l, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc, l) }()
	t.Cleanup(func() {
		cancel()
		if err := testutil.Wait(t, stopLimit, "Serve to return after its context ended", done); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return srv, pc.LocalAddr().String()
}

// resolver is a dnsdisc.Resolver that asks one server directly: UDP
// first, TCP when the reply is truncated, as a stub resolver does. from,
// when set, is the local address queries leave from.
type resolver struct {
	server string
	from   string
	edns   bool
}

func (r resolver) exchange(ctx context.Context, name string, qtype uint16) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	if r.edns {
		q.SetEdns0(maxUDPSize, false)
	}
	for _, network := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: network, Timeout: 3 * time.Second}
		if r.from != "" {
			if network == "udp" {
				c.Dialer = &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(r.from)}}
			} else {
				c.Dialer = &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(r.from)}}
			}
		}
		in, _, err := c.ExchangeContext(ctx, q, r.server)
		if err != nil {
			return nil, err
		}
		if !in.Truncated {
			return in, nil
		}
	}
	return nil, fmt.Errorf("%s: truncated over TCP", name)
}

func (r resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	in, err := r.exchange(ctx, name, dns.TypeTXT)
	if err != nil {
		return nil, err
	}
	if in.Rcode != dns.RcodeSuccess {
		return nil, fmt.Errorf("%s: %s", name, dns.RcodeToString[in.Rcode])
	}
	var out []string
	for _, rr := range in.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out, nil
}

// client is go-ethereum's own dnsdisc client on r, without its 3-per-
// second limit (the server's own limit is what the tests measure).
func client(r dnsdisc.Resolver) *dnsdisc.Client {
	return dnsdisc.NewClient(dnsdisc.Config{Resolver: r, RateLimit: 10000, Timeout: 5 * time.Second})
}

// ids is the sorted node IDs of nodes.
func ids(nodes []*enode.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.ID().String()
	}
	slices.Sort(out)
	return out
}
