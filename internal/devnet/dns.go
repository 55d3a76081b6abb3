package devnet

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/consortium/consortium/internal/dnstree"
	"github.com/consortium/consortium/internal/registry"
)

// The registrar of a devnet also serves every member's signed node tree
// over DNS (internal/dnstree, what `consortium registrar --dns-listen`
// runs), and each member runs one node that is nothing but geth with
// --discovery.dns enrtree://KEY@<member>.nodes.<domain>: no agent, no
// static peers, no bootnodes (dns_node.go).
//
// geth asks the resolvers in /etc/resolv.conf, on port 53; neither can be
// told otherwise. So the DNS server listens on port 53 of a loopback
// address of its own (127.53.x.y, from the base port, so two devnets do
// not meet), and each such geth runs in a mount namespace of its own whose
// /etc/resolv.conf names that address. Both need root (binding port 53,
// unshare and mount); without it the devnet says so, serves the trees on a
// free port for dig, and starts no plain-geth node.

// dnsServer is the registrar's DNS side.
type dnsServer struct {
	trees *dnstree.Trees
	srv   *dnstree.Server
	addr  string // host:port it answers on
	// resolv is a resolv.conf naming addr, for the plain-geth nodes; ""
	// when they cannot use it (not on port 53, or not root).
	resolv string
	// why says why resolv is empty.
	why    string
	cancel context.CancelFunc
	done   chan struct{}
}

// dnsAddr is the loopback address the DNS server of a devnet with this
// base port listens on: 127.53.<high byte>.<low byte>.
func dnsAddr(basePort int) string {
	return fmt.Sprintf("127.53.%d.%d", basePort>>8&0xff, basePort&0xff)
}

// startDNS serves the trees of reg's members. Not fatal: a devnet without
// DNS is still a devnet, so errors come back as the reason to print.
func startDNS(reg *registry.Registry, dir string, m consortiuminit.Manifest, basePort int, log *slog.Logger) (*dnsServer, error) {
	key, err := dnsKey(dir, m)
	if err != nil {
		return nil, err
	}
	domain := m.DNSDomain
	if domain == "" {
		domain = consortiuminit.DefaultDNSDomain
	}
	trees, err := dnstree.New(dnstree.NewRegistrySource(reg), dnstree.Config{Domain: domain, Key: key, Logger: log})
	if err != nil {
		return nil, err
	}
	s := &dnsServer{trees: trees, done: make(chan struct{})}
	host := dnsAddr(basePort)
	pc, l, err := dnstree.Listen(net.JoinHostPort(host, "53"))
	switch {
	case err == nil:
		s.resolv = filepath.Join(dir, "data", "registrar", "resolv.conf")
		// Short timeouts: the server is local, and a lost answer should
		// cost geth a second, not five.
		if err := os.WriteFile(s.resolv, []byte("nameserver "+host+"\noptions timeout:1 attempts:3\n"), 0o644); err != nil {
			pc.Close()
			l.Close()
			return nil, err
		}
	case os.Geteuid() != 0:
		s.why = "geth asks port 53, which only root may serve here"
	default:
		s.why = fmt.Sprintf("port 53 of %s: %v", host, err)
	}
	if err != nil {
		if pc, l, err = dnstree.Listen("127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	s.addr = pc.LocalAddr().String()
	s.srv = dnstree.NewServer(trees, dnstree.ServerConfig{Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go trees.Run(ctx)
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ctx, pc, l); err != nil {
			log.Error("DNS server stopped", "err", err)
		}
	}()
	return s, nil
}

// dnsKey is the trees' key: the one `consortium init` wrote (so the URLs
// init printed hold), else one kept in the registrar's data directory (a
// consortium made before init wrote one).
func dnsKey(dir string, m consortiuminit.Manifest) (*ecdsa.PrivateKey, error) {
	if m.DNSKey != "" {
		k, err := dnstree.LoadKey(filepath.Join(dir, filepath.FromSlash(m.DNSKey)))
		if err == nil {
			return k, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	k, _, err := dnstree.LoadOrCreateKey(filepath.Join(dir, "data", "registrar"))
	return k, err
}

func (s *dnsServer) stop() {
	if s == nil {
		return
	}
	s.cancel()
	<-s.done
}

// url is member's enrtree:// URL.
func (s *dnsServer) url(member string) string { return s.trees.URL(member) }

// port is the port the server answers on.
func (s *dnsServer) port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}
