//go:build linux

package devnet

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store/sqlite"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/p2p/dnsdisc"
	"github.com/miekg/dns"
)

// TestDNSServesTreesWithoutPort53: when port 53 of the devnet's DNS
// address cannot be had (here: taken; for a user: not root), the trees are
// still served, on a free port of 127.0.0.1, signed with init's key, and
// the devnet knows not to start plain-geth nodes (no resolv.conf).
func TestDNSServesTreesWithoutPort53(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	res, err := consortiuminit.Run(consortiuminit.Config{Members: []string{"acme", "bank"}, Out: filepath.Join(dir, "c"), Consensus: BFT})
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "reg"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := registry.Open(ctx, st, registry.Config{Logger: log, AllowLoopbackEndpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.AddMember(ctx, admin, "acme"); err != nil {
		t.Fatal(err)
	}
	rec := testutil.ENR(t, testutil.Key(t), 1, "127.0.0.1", 30303, 30303)
	if _, _, err := reg.Register(ctx, registry.Principal{Name: "acme"}, registry.Registration{Role: "tx", ENR: rec}); err != nil {
		t.Fatal(err)
	}

	const base = 41234
	host := dnsAddr(base)
	if os.Geteuid() == 0 {
		// Take port 53 first, as something else on the machine might.
		pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "53"))
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
	}
	if err := os.MkdirAll(filepath.Join(res.Out, "data", "registrar"), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := startDNS(reg, res.Out, res.Manifest, base, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	if s.resolv != "" || s.why == "" {
		t.Errorf("resolv %q, why %q: want no resolv.conf and a reason", s.resolv, s.why)
	}
	if !strings.HasPrefix(s.addr, "127.0.0.1:") {
		t.Errorf("served on %s, want a port of 127.0.0.1", s.addr)
	}
	var acme consortiuminit.Member
	for _, m := range res.Manifest.Members {
		if m.Name == "acme" {
			acme = m
		}
	}
	if got := s.url("acme"); got != acme.DiscoveryDNS {
		t.Errorf("acme's URL %s, init printed %s", got, acme.DiscoveryDNS)
	}
	// go-ethereum's own client reads and verifies the tree.
	c := dnsdisc.NewClient(dnsdisc.Config{Resolver: portResolver(s.addr), RateLimit: 1000, Timeout: 3 * time.Second})
	var tree *dnsdisc.Tree
	deadline := time.Now().Add(10 * time.Second)
	for {
		if tree, err = c.SyncTree(acme.DiscoveryDNS); err == nil && len(tree.Nodes()) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme's tree from %s: %v", s.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := tree.Nodes()[0].String(); got != rec {
		t.Errorf("the tree holds %s, want %s", got, rec)
	}
}

// portResolver asks one DNS server at host:port for TXT records.
type portResolver string

func (r portResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	in, _, err := (&dns.Client{Net: "tcp", Timeout: 3 * time.Second}).ExchangeContext(ctx, q, string(r))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, rr := range in.Answer {
		if txt, ok := rr.(*dns.TXT); ok {
			out = append(out, strings.Join(txt.Txt, ""))
		}
	}
	return out, nil
}

// TestStartInResolvConf: a child started by startIn sees the devnet's
// resolv.conf at /etc/resolv.conf, and nothing else on the machine does.
func TestStartInResolvConf(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a mount namespace")
	}
	before, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Skip("no /etc/resolv.conf to cover")
	}
	mine := filepath.Join(t.TempDir(), "resolv.conf")
	want := "nameserver 127.53.1.2\n"
	if err := os.WriteFile(mine, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command("cat", "/etc/resolv.conf")
	cmd.Stdout = &out
	cmd.SysProcAttr = childAttr()
	exited := make(chan struct{})
	if err := startIn(cmd, mine, exited); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	close(exited)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("the child read %q, want %q", out.String(), want)
	}
	after, _ := os.ReadFile("/etc/resolv.conf")
	if !bytes.Equal(before, after) {
		t.Errorf("this process's /etc/resolv.conf changed: %q, was %q", after, before)
	}
	// The same call without a resolv.conf changes nothing for the child.
	out.Reset()
	cmd = exec.Command("cat", "/etc/resolv.conf")
	cmd.Stdout = &out
	if err := startIn(cmd, "", nil); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil || !bytes.Equal(out.Bytes(), before) {
		t.Errorf("without a resolv.conf the child read %q (%v), want the machine's", out.String(), err)
	}
}
