package agent

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"

	"github.com/consortium/consortium/internal/ethclient"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Why a firewall as well as the guard.
//
// The guard (guard.go) drops a stranger within milliseconds of its
// handshake, but the stranger did connect. Where the agent may change the
// host's firewall (opt-in: it needs CAP_NET_ADMIN), it also keeps an
// nftables table that lets only the node's peers reach its P2P port, so a
// stranger's TCP connection never reaches geth. The peers are the set's
// own endpoints: a public node's set holds its member's nodes (private
// endpoints) and every other member's public nodes (public endpoints), so
// no other list is needed. UDP discovery is left open: it carries no chain
// data, and the member's nodes find each other through it.

// Firewall applies a ruleset produced by NFTRules.Render.
type Firewall interface {
	Apply(ctx context.Context, ruleset string) error
}

// NFT applies rulesets with the nft command (nft -f -), which replaces the
// table in one transaction.
type NFT struct {
	// Path is the nft binary. Default "nft" on PATH.
	Path string
}

// Apply runs nft with the ruleset on standard input.
func (n NFT) Apply(ctx context.Context, ruleset string) error {
	path := n.Path
	if path == "" {
		path = "nft"
	}
	cmd := exec.CommandContext(ctx, path, "-f", "-")
	cmd.Stdin = strings.NewReader(ruleset)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nft: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// DefaultNFTTable is the nftables table the agent owns.
const DefaultNFTTable = "consortium_agent"

// NFTRules is the allow-list for one node's P2P port.
type NFTRules struct {
	// Table is the inet table the agent owns and rewrites whole.
	// Default DefaultNFTTable.
	Table string
	// Port is the node's devp2p TCP port. Required.
	Port int
	// ConsensusPort is the node's CometBFT P2P TCP port on a BFT chain,
	// filtered with the same allow-list (its peers are the same nodes at
	// the same IPs). 0: none.
	ConsensusPort int
	// Allow are the addresses and prefixes that may connect to Port.
	Allow []netip.Prefix
}

// Render produces the ruleset text: create the table if missing, delete it,
// and define it again, so nft applies the whole change atomically and a
// rerun is idempotent. An empty allow-list refuses every connection to the
// port: the agent only applies a ruleset once it knows the node's set.
func (r NFTRules) Render() (string, error) {
	if r.Port <= 0 || r.Port > 65535 {
		return "", fmt.Errorf("nftables: port %d out of range", r.Port)
	}
	if r.ConsensusPort < 0 || r.ConsensusPort > 65535 {
		return "", fmt.Errorf("nftables: consensus port %d out of range", r.ConsensusPort)
	}
	ports := fmt.Sprint(r.Port)
	if r.ConsensusPort != 0 && r.ConsensusPort != r.Port {
		ports = fmt.Sprintf("{ %d, %d }", r.Port, r.ConsensusPort)
	}
	table := r.Table
	if table == "" {
		table = DefaultNFTTable
	}
	if !validNFTName(table) {
		return "", fmt.Errorf("nftables: table name %q: use letters, digits and _", table)
	}
	var v4, v6 []string
	for _, p := range normalise(r.Allow) {
		s := p.String()
		if p.IsSingleIP() {
			s = p.Addr().String()
		}
		if p.Addr().Is4() {
			v4 = append(v4, s)
		} else {
			v6 = append(v6, s)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by consortium agent: only the node's peers reach its P2P port.\n")
	fmt.Fprintf(&b, "table inet %s\ndelete table inet %s\ntable inet %s {\n", table, table, table)
	writeSet(&b, "peers4", "ipv4_addr", v4)
	writeSet(&b, "peers6", "ipv6_addr", v6)
	fmt.Fprintf(&b, "\tchain input {\n\t\ttype filter hook input priority filter - 10; policy accept;\n")
	fmt.Fprintf(&b, "\t\ttcp dport %s ip saddr @peers4 accept\n", ports)
	fmt.Fprintf(&b, "\t\ttcp dport %s ip6 saddr @peers6 accept\n", ports)
	fmt.Fprintf(&b, "\t\ttcp dport %s drop\n\t}\n}\n", ports)
	return b.String(), nil
}

func writeSet(b *strings.Builder, name, typ string, elems []string) {
	fmt.Fprintf(b, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\tauto-merge\n", name, typ)
	if len(elems) > 0 {
		fmt.Fprintf(b, "\t\telements = { %s }\n", strings.Join(elems, ", "))
	}
	b.WriteString("\t}\n")
}

// normalise unmaps IPv4-in-IPv6 addresses, masks prefixes, drops invalid
// ones and sorts and dedupes the rest.
func normalise(in []netip.Prefix) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(in))
	for _, p := range in {
		if !p.IsValid() {
			continue
		}
		a := p.Addr()
		bits := p.Bits()
		if a.Is4In6() {
			a, bits = a.Unmap(), max(bits-96, 0)
		}
		q, err := a.WithZone("").Prefix(bits)
		if err != nil {
			continue
		}
		out = append(out, q)
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int {
		if c := x.Addr().Compare(y.Addr()); c != 0 {
			return c
		}
		return x.Bits() - y.Bits()
	})
	return slices.Compact(out)
}

func validNFTName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// peerPrefixes is the allow-list of a set: each node's IP, plus extra.
func peerPrefixes(nodes []*enode.Node, extra []netip.Prefix) []netip.Prefix {
	out := append([]netip.Prefix(nil), extra...)
	for _, n := range nodes {
		if a, ok := netip.AddrFromSlice(n.IP()); ok && n.IP() != nil {
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
		}
	}
	return out
}

// firewallStep renders the allow-list for the current set and applies it
// when it differs from the last one applied. Nothing is applied before a
// set is known: an empty list would shut every peer out.
func (a *Agent) firewallStep(ctx context.Context, info ethclient.NodeInfo) {
	if a.cfg.Firewall == nil || info.ListenerPort == 0 {
		return
	}
	a.mu.Lock()
	have := a.haveSet
	nodes := append(append([]*enode.Node(nil), a.desired...), a.applied...)
	a.mu.Unlock()
	if !have {
		return
	}
	allow := peerPrefixes(nodes, a.cfg.FirewallAllow)
	rules := NFTRules{Table: a.cfg.FirewallTable, Port: info.ListenerPort, Allow: allow}
	if a.cfg.Consensus != nil {
		rules.ConsensusPort = a.cfg.ConsensusPort
	}
	text, err := rules.Render()
	if err != nil || text == a.fwApplied {
		if err != nil && a.fwFailed != err.Error() {
			a.fwFailed = err.Error()
			a.log.Warn("firewall rules not written", "err", err)
		}
		return
	}
	if err := a.cfg.Firewall.Apply(ctx, text); err != nil {
		if a.fwFailed != text {
			a.fwFailed = text
			a.log.Warn("applying the firewall rules failed; the guard still drops strangers", "err", err)
		}
		return
	}
	a.fwApplied, a.fwFailed = text, ""
	a.log.Info("firewall rules applied", "port", info.ListenerPort, "allowed", len(normalise(allow)))
}
