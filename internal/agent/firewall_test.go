package agent

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/ethclient"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

func prefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				t.Fatal(err)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p)
	}
	return out
}

func TestNFTRulesRender(t *testing.T) {
	head := "# Written by consortium agent: only the node's peers reach its P2P port.\n" +
		"table inet consortium_agent\ndelete table inet consortium_agent\ntable inet consortium_agent {\n"
	set := func(name, typ, elems string) string {
		s := "\tset " + name + " {\n\t\ttype " + typ + "\n\t\tflags interval\n\t\tauto-merge\n"
		if elems != "" {
			s += "\t\telements = { " + elems + " }\n"
		}
		return s + "\t}\n"
	}
	chain := func(port int) string {
		return fmt.Sprintf("\tchain input {\n\t\ttype filter hook input priority filter - 10; policy accept;\n"+
			"\t\ttcp dport %[1]d ip saddr @peers4 accept\n\t\ttcp dport %[1]d ip6 saddr @peers6 accept\n\t\ttcp dport %[1]d drop\n\t}\n}\n", port)
	}
	for _, tc := range []struct {
		name  string
		rules NFTRules
		want  string
		err   string
	}{
		{"public node: its member and other members' public nodes",
			NFTRules{Port: 30303, Allow: prefixes(t, "203.0.113.7", "10.1.0.4", "198.51.100.2", "10.1.0.5")},
			head + set("peers4", "ipv4_addr", "10.1.0.4, 10.1.0.5, 198.51.100.2, 203.0.113.7") + set("peers6", "ipv6_addr", "") + chain(30303), ""},
		{"duplicates, mapped IPv4, a prefix and IPv6",
			NFTRules{Port: 30304, Allow: prefixes(t, "10.0.0.1", "::ffff:10.0.0.1", "10.2.0.9/16", "2001:db8::1", "2001:db8::1")},
			head + set("peers4", "ipv4_addr", "10.0.0.1, 10.2.0.0/16") + set("peers6", "ipv6_addr", "2001:db8::1") + chain(30304), ""},
		{"empty: nobody reaches the port",
			NFTRules{Port: 30303},
			head + set("peers4", "ipv4_addr", "") + set("peers6", "ipv6_addr", "") + chain(30303), ""},
		{"own table name",
			NFTRules{Table: "member_a", Port: 1, Allow: prefixes(t, "10.0.0.1")},
			strings.ReplaceAll(head, "consortium_agent", "member_a") + set("peers4", "ipv4_addr", "10.0.0.1") + set("peers6", "ipv6_addr", "") + chain(1), ""},
		{"BFT node: the consensus port too",
			NFTRules{Port: 30303, ConsensusPort: 26656, Allow: prefixes(t, "10.0.0.1")},
			head + set("peers4", "ipv4_addr", "10.0.0.1") + set("peers6", "ipv6_addr", "") +
				strings.ReplaceAll(chain(30303), "dport 30303", "dport { 30303, 26656 }"), ""},
		{"no port", NFTRules{}, "", "port 0 out of range"},
		{"consensus port too high", NFTRules{Port: 1, ConsensusPort: 65536}, "", "consensus port 65536 out of range"},
		{"port too high", NFTRules{Port: 70000}, "", "port 70000 out of range"},
		{"table name that would inject", NFTRules{Table: "x; flush ruleset", Port: 1}, "", "table name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.rules.Render()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// fakeFirewall records the rulesets applied.
type fakeFirewall struct {
	mu      sync.Mutex
	applied []string
}

func (f *fakeFirewall) Apply(_ context.Context, s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, s)
	return nil
}

// The agent writes the rules once a set is known, again when the set's
// addresses change, and not otherwise.
func TestFirewallFollowsTheSet(t *testing.T) {
	fw := &fakeFirewall{}
	a := newUnitAgent(t, &fakeClient{}, Config{Firewall: fw, FirewallAllow: prefixes(t, "192.0.2.0/24")})
	info := ethclient.NodeInfo{ListenerPort: 30303}
	ctx := context.Background()
	a.firewallStep(ctx, info)
	if len(fw.applied) != 0 {
		t.Fatal("rules applied before any set was known")
	}
	p1 := enode.NewV4(&mustKey(t, 1).PublicKey, net.ParseIP("10.0.0.1"), 30303, 30303)
	p2 := enode.NewV4(&mustKey(t, 2).PublicKey, net.ParseIP("10.0.0.2"), 30303, 30303)
	a.desired, a.haveSet = []*enode.Node{p1}, true
	a.firewallStep(ctx, info)
	a.firewallStep(ctx, info)
	if len(fw.applied) != 1 || !strings.Contains(fw.applied[0], "elements = { 10.0.0.1, 192.0.2.0/24 }") {
		t.Fatalf("applied %q", fw.applied)
	}
	a.desired = []*enode.Node{p1, p2}
	a.firewallStep(ctx, info)
	if len(fw.applied) != 2 || !strings.Contains(fw.applied[1], "10.0.0.1, 10.0.0.2, 192.0.2.0/24") {
		t.Fatalf("applied %q", fw.applied)
	}
}

// The rendered rules are accepted by nft and do what they say: on a
// loopback listener, a connection from an allowed address gets through and
// one from another address does not. Needs nft and CAP_NET_ADMIN; skipped
// without them. Only the test's own port is filtered, and the table is
// removed afterwards.
func TestNFTRulesWithNft(t *testing.T) {
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root for nft")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	table := fmt.Sprintf("consortium_agent_test_%d", os.Getpid())
	text, err := NFTRules{Table: table, Port: port, Allow: prefixes(t, "127.0.0.2")}.Render()
	if err != nil {
		t.Fatal(err)
	}
	if err := (NFT{}).Apply(context.Background(), text); err != nil {
		t.Skipf("nft cannot apply rules here: %v", err)
	}
	t.Cleanup(func() { exec.Command("nft", "delete", "table", "inet", table).Run() })
	// Applying again replaces the table rather than failing.
	if err := (NFT{}).Apply(context.Background(), text); err != nil {
		t.Fatalf("second apply: %v", err)
	}
	dial := func(from string) error {
		d := net.Dialer{Timeout: 500 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial("127.0.0.2"); err != nil {
		t.Fatalf("an allowed address was refused: %v", err)
	}
	if err := dial("127.0.0.3"); err == nil {
		t.Fatal("an address outside the allow-list connected")
	}
}

func mustKey(t *testing.T, b byte) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.ToECDSA(bytesOf(b))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
