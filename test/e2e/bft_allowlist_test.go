//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The allow-list (issue 18): each public node's agent runs with
// --firewall nftables (deploy/compose/gen-compose.sh), so only its peer
// set's IPs reach geth's and CometBFT's TCP ports; its metrics listen on its
// member's network only. A stranger's container on the internet network,
// the network the members' public nodes share, must not open a TCP
// connection to any port of any public node, while it can reach the
// registrar there (which shows the stranger is on that network and the
// probe works).

// publicPorts are the TCP ports a public node has open: geth's devp2p,
// CometBFT's P2P, geth's metrics, the agent's metrics and health.
var publicPorts = []string{"30303", "26656", "6060", "9899"}

// strangerCannotConnect waits until every public node's agent has applied
// its rules, then runs the probe (test/e2e/probe) in a new container on
// the internet network against every public node's ports.
func (c *bftConsortium) strangerCannotConnect(t *testing.T) {
	for i, m := range bftMembers {
		svc := m + "-public-agent"
		var table string
		// The set's other members' public nodes are in it (the agent
		// rewrites the table as they register).
		waitFor(t, svc+" applied its nftables rules", 2*time.Minute, 2*time.Second, func() (bool, string) {
			out, err := run(context.Background(), nil, "docker", "exec", c.mustContainer(t, svc),
				"nft", "list", "table", "inet", "consortium_agent")
			table = out
			if err != nil {
				return false, errString(err)
			}
			for j := range bftMembers {
				if ip := fmt.Sprintf("%s.0.%d", bftNetPrefix, 11+j); j != i && !nftSetHas(table, "peers4", ip) {
					return false, fmt.Sprintf("the allow-list lacks %s (member %s's public node):\n%s", ip, bftMembers[j], table)
				}
			}
			return true, ""
		})
		if !strings.Contains(table, "26656") || !strings.Contains(table, "30303") {
			t.Errorf("%s's table does not name both P2P ports:\n%s", svc, table)
		}
	}
	var targets []string
	for i := range bftMembers {
		for _, p := range publicPorts {
			targets = append(targets, fmt.Sprintf("%s.0.%d:%s", bftNetPrefix, 11+i, p))
		}
	}
	control := bftNetPrefix + ".0.2:9898" // the registrar, on the same network
	lines := c.probe(t, append(targets, control))
	connected := 0
	for _, tg := range targets {
		switch l := lines[tg]; {
		case strings.HasSuffix(l, " connected"):
			connected++
			t.Errorf("a stranger on the internet network connected to %s", tg)
		case l == "":
			t.Errorf("the probe said nothing of %s", tg)
		}
	}
	if l := lines[control]; !strings.HasSuffix(l, " connected") {
		t.Fatalf("the stranger could not reach the registrar either (%q): the probe proves nothing", l)
	}
	t.Logf("stranger at the internet network: %d of %d connections to the public nodes opened; the registrar reached", connected, len(targets))
	fmt.Printf("E2E RESULT stranger on the internet network: %d of %d TCP connections opened (4 public nodes, ports %s); the registrar reached\n",
		connected, len(targets), strings.Join(publicPorts, ", "))
}

// probe runs test/e2e/probe in a throwaway container on the internet
// network and returns its line for each address.
func (c *bftConsortium) probe(t *testing.T, addrs []string) map[string]string {
	t.Helper()
	dir, image := c.buildProbe(t)
	args := []string{"run", "--rm", "--network", c.network(t, "internet"), "-v", dir + ":/probe:ro",
		"--entrypoint", "/probe/probe", image, "-timeout", "3s"}
	out, err := run(context.Background(), nil, "docker", append(args, addrs...)...)
	if err != nil {
		t.Fatalf("probe: %v", err)
	}
	t.Logf("probe from a stranger on the internet network:\n%s", out)
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = l
		}
	}
	return lines
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return " " + lastLines(err.Error(), 1)
}

// dashboardQueries evaluates every query of the Grafana dashboard
// (deploy/grafana/consortium.json) on the consortium's Prometheus, with
// the dashboard's variables at their defaults: each must be valid PromQL
// over what is scraped, and the consensus panels must show data.
func (c *bftConsortium) dashboardQueries(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(c.root, "deploy", "grafana", "consortium.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	vars := strings.NewReplacer("$agent_job", "consortium-agent", "$geth_job", "geth",
		"$registrar_job", "consortium-registrar", "$bootnode_job", "consortium-bootnode",
		"$member", ".*", "$__rate_interval", "1m")
	n, empty := 0, []string{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			r, err := c.promQuery(vars.Replace(tg.Expr))
			if err != nil {
				t.Errorf("panel %q: %v", p.Title, err)
				continue
			}
			n++
			if len(r) == 0 {
				empty = append(empty, p.Title)
			}
		}
	}
	for _, p := range dash.Panels {
		if strings.HasPrefix(p.Title, "Final height") || p.Title == "Consensus peers by node" || p.Title == "Rounds per block" {
			for _, e := range empty {
				if e == p.Title {
					t.Errorf("consensus panel %q shows no data", p.Title)
				}
			}
		}
	}
	// Each consensus metric without labels is served by all 12 nodes.
	for _, m := range []string{"consortium_consensus_height", "consortium_consensus_round",
		"consortium_consensus_rounds_per_block_count", "consortium_consensus_block_interval_seconds_count",
		"consortium_consensus_build_failures_total", "consortium_consensus_engine_retries_total",
		"consortium_consensus_peers", "consortium_consensus_peers_refused_total"} {
		r, err := c.promQuery(m)
		if err != nil {
			t.Fatal(err)
		}
		if len(r) != 12 {
			t.Errorf("%s: %d series, want 12", m, len(r))
		}
	}
	t.Logf("%d dashboard queries evaluated; without data now (no event yet): %q", n, empty)
}

// allowListValues runs deploy/helm's allowlist command against the
// consortium's registrar with member a's credential, leaving a's own
// network out: the Helm values it writes must admit exactly the other
// members' public nodes (the chart test renders such values into the
// public nodes' NetworkPolicy: deploy/helm/allowlist_test.go).
func (c *bftConsortium) allowListValues(t *testing.T) {
	var out string
	var want []string
	for i := range bftMembers[1:] {
		want = append(want, fmt.Sprintf("    - %q", fmt.Sprintf("%s.0.%d/32", bftNetPrefix, 12+i)))
	}
	// The registrar's answer holds only live public nodes: wait for all.
	waitFor(t, "allow-list of a's public node", time.Minute, 2*time.Second, func() (bool, string) {
		cmd := exec.Command("go", "run", "./cmd/allowlist", "-registrar", "https://127.0.0.1:"+bftRegistrarPt,
			"-ca", filepath.Join(c.dir, "tls", "ca.pem"), "-credential-file", filepath.Join(c.dir, c.man.Members[0].Credential),
			"-exclude", bftNetPrefix+".1.0/24")
		cmd.Dir = filepath.Join(c.root, "deploy", "helm")
		b, err := cmd.CombinedOutput()
		out = string(b)
		if err != nil {
			return false, err.Error() + ": " + out
		}
		var got []string
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, "    - ") {
				got = append(got, l)
			}
		}
		return slices.Equal(got, want), out
	})
	t.Logf("Helm values from the allow-list of a's public node:\n%s", out)
}

// nftSetHas reports whether the set of an `nft list table` output holds ip.
// The set has auto-merge: adjacent addresses are listed as one range
// ("10.203.0.12-10.203.0.14"), so a plain search for the address misses it.
func nftSetHas(table, set, ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	_, rest, ok := strings.Cut(table, "set "+set+" {")
	if !ok {
		return false
	}
	// Up to the first closing brace: the elements' or, with none, the set's.
	rest, _, _ = strings.Cut(rest, "}")
	_, elems, ok := strings.Cut(rest, "elements = {")
	if !ok {
		return false
	}
	for _, e := range strings.Split(elems, ",") {
		e = strings.TrimSpace(e)
		if lo, hi, isRange := strings.Cut(e, "-"); isRange {
			a, errA := netip.ParseAddr(strings.TrimSpace(lo))
			b, errB := netip.ParseAddr(strings.TrimSpace(hi))
			if errA == nil && errB == nil && a.Compare(addr) <= 0 && addr.Compare(b) <= 0 {
				return true
			}
			continue
		}
		if p, err := netip.ParsePrefix(e); err == nil && p.Contains(addr) {
			return true
		}
		if a, err := netip.ParseAddr(e); err == nil && a == addr {
			return true
		}
	}
	return false
}
