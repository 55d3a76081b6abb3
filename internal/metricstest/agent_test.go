package metricstest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// fakeClient is an Ethereum client whose peers connect the moment they are
// added: the agent's metrics, not geth's dialling, are under test here
// (internal/agent's geth suite runs the real thing).
type fakeClient struct {
	info ethclient.NodeInfo

	mu      sync.Mutex
	down    bool
	mining  bool // the miner API, for --seal
	peers   map[enode.ID]ethclient.Peer
	trusted map[enode.ID]bool // as geth, trust is kept for a peer not yet connected
}

var errDown = errors.New("fake client: down")

func (c *fakeClient) NodeInfo(context.Context) (ethclient.NodeInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return ethclient.NodeInfo{}, errDown
	}
	return c.info, nil
}

func (c *fakeClient) Peers(context.Context) ([]ethclient.Peer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.down {
		return nil, errDown
	}
	out := make([]ethclient.Peer, 0, len(c.peers))
	for _, p := range c.peers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Enode < out[j].Enode })
	return out, nil
}

func (c *fakeClient) AddPeer(_ context.Context, n *enode.Node) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.peers[n.ID()] = ethclient.Peer{ID: n.ID(), Node: n, Enode: n.URLv4(), Static: true, Trusted: c.trusted[n.ID()]}
	return nil
}

func (c *fakeClient) RemovePeer(_ context.Context, n *enode.Node) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.peers, n.ID())
	return nil
}

func (c *fakeClient) AddTrustedPeer(_ context.Context, n *enode.Node) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trusted[n.ID()] = true
	if p, ok := c.peers[n.ID()]; ok {
		p.Trusted = true
		c.peers[n.ID()] = p
	}
	return nil
}

func (c *fakeClient) RemoveTrustedPeer(_ context.Context, n *enode.Node) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.trusted, n.ID())
	if p, ok := c.peers[n.ID()]; ok {
		p.Trusted = false
		c.peers[n.ID()] = p
	}
	return nil
}

// The miner API of a Clique signer (agent --seal).
func (c *fakeClient) SetEtherbase(context.Context, common.Address) error { return nil }
func (c *fakeClient) CanSign(context.Context, common.Address) bool       { return true }
func (c *fakeClient) StartMining(context.Context) error                  { return c.setMining(true) }
func (c *fakeClient) StopMining(context.Context) error                   { return c.setMining(false) }
func (c *fakeClient) Mining(context.Context) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mining, nil
}

func (c *fakeClient) setMining(on bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mining = on
	return nil
}

func (c *fakeClient) HeadBlock(context.Context) (uint64, error) { return 42, nil }
func (c *fakeClient) Syncing(context.Context) (bool, error)     { return false, nil }
func (c *fakeClient) Close()                                    {}

func (c *fakeClient) setDown(down bool) {
	c.mu.Lock()
	c.down = down
	c.mu.Unlock()
}

// TestAgentMetricsMove runs an agent against a real registrar and a fake
// client and takes each documented agent metric through its event.
func TestAgentMetricsMove(t *testing.T) {
	r := newRegistrar(t, 30*time.Second, false)
	acme := r.addMember("acme")
	peer := newNode(t, "tx", "10.1.0.4")
	if code, b := r.do("POST", "/v1/nodes", acme, peer.body(t, 1)); code != 201 {
		t.Fatalf("registering the peer: %d %s", code, b)
	}

	key := testutil.Key(t)
	self, err := enode.Parse(enode.ValidSchemes, testutil.ENR(t, key, 1, "10.1.0.3", 30303, 30303))
	if err != nil {
		t.Fatal(err)
	}
	client := &fakeClient{peers: map[enode.ID]ethclient.Peer{}, trusted: map[enode.ID]bool{}, info: ethclient.NodeInfo{
		ID: self.ID(), Node: self, Enode: self.URLv4(), ENR: self.String(), Name: "Geth/fake",
		IP: "10.1.0.3", ListenerPort: 30303, DiscoveryPort: 30303, ListenAddr: ":30303",
	}}
	rc, err := registrarclient.New(registrarclient.Config{URL: r.URL, Credential: acme})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	a, err := agent.New(agent.Config{
		Client: client, Registrar: rc, Key: key, Role: "validator", StateDir: t.TempDir(),
		WatchWait: 2 * time.Second, RenewInterval: 100 * time.Millisecond, DialStagger: time.Millisecond, DepartGrace: 50 * time.Millisecond,
		RetryMin: 20 * time.Millisecond, RetryMax: 200 * time.Millisecond,
		Seal: common.HexToAddress("0x00000000000000000000000000000000000000c1"), SealCheck: 20 * time.Millisecond,
		StallAfter: 200 * time.Millisecond, StallCheck: 20 * time.Millisecond,
		Metrics: reg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ms := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer ms.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("the agent did not stop within 30 s")
		}
	}()

	m := func() samples { return scrape(t, ms.URL) }
	get := func(name string, match ...string) float64 {
		v, _ := m().sum(name, match...)
		return v
	}
	// wait fails with the agent's metrics as they last were.
	wait := func(what string, cond func() bool) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, what, func() error {
			if cond() {
				return nil
			}
			var b strings.Builder
			for _, s := range m() {
				if strings.HasPrefix(s.name, "consortium_agent") {
					fmt.Fprintf(&b, "\n%s %v %v", s.name, s.labels, s.value)
				}
			}
			return fmt.Errorf("agent metrics:%s", b.String())
		})
	}
	checked := map[string]bool{}
	moved := func(name, event string, cond func() bool) {
		t.Helper()
		wait(name+" moves when "+event, cond)
		checked[name] = true
	}

	// Start: it registers, reaches both ends, gets its set, dials its peer.
	moved("consortium_agent_registrations_total", "the node registers", func() bool {
		return get("consortium_agent_registrations_total", "result", "ok") >= 1
	})
	moved("consortium_agent_registrar_up", "the registrar answers", func() bool { return get("consortium_agent_registrar_up") == 1 })
	moved("consortium_agent_client_up", "the client answers", func() bool { return get("consortium_agent_client_up") == 1 })
	moved("consortium_agent_lease_expires_timestamp_seconds", "the lease is granted", func() bool {
		v := get("consortium_agent_lease_expires_timestamp_seconds")
		return v > float64(time.Now().Unix()) && v <= float64(time.Now().Add(31*time.Second).Unix())
	})
	moved("consortium_agent_peer_set_changes_total", "the first set arrives", func() bool {
		return get("consortium_agent_peer_set_changes_total") >= 1
	})
	moved("consortium_agent_peers_desired", "the set holds the peer", func() bool { return get("consortium_agent_peers_desired") == 1 })
	moved("consortium_agent_reconcile_actions_total", "the peer is added", func() bool {
		return get("consortium_agent_reconcile_actions_total", "kind", "add-peer") >= 1 &&
			get("consortium_agent_reconcile_actions_total", "kind", "add-trusted") >= 1
	})
	moved("consortium_agent_peers_connected", "the peer connects", func() bool { return get("consortium_agent_peers_connected") == 1 })
	moved("consortium_agent_seal_starts_total", "the set is connected and the signer starts", func() bool {
		return get("consortium_agent_seal_starts_total") == 1
	})
	// The peer reports a head above the node's (which the fake keeps at 42):
	// the agent reconnects it. Then it reports 42, and the kicks stop.
	renewHead := func(head uint64) {
		t.Helper()
		if code, b := r.do("POST", "/v1/nodes/"+peer.id+"/renew", acme, map[string]any{"status": map[string]any{"head": head}}); code != 200 {
			t.Fatalf("renewing the peer with head %d: %d %s", head, code, b)
		}
	}
	renewHead(100)
	moved("consortium_agent_stall_reconnects_total", "a peer reports a higher head while the node's stays put", func() bool {
		return get("consortium_agent_stall_reconnects_total") >= 1
	})
	renewHead(42)
	moved("consortium_agent_renewals_total", "the lease is renewed", func() bool {
		return get("consortium_agent_renewals_total", "result", "ok") >= 2
	})

	// A second peer: a new set, one more desired and connected.
	changes := get("consortium_agent_peer_set_changes_total")
	second := newNode(t, "tx", "10.1.0.5")
	if code, b := r.do("POST", "/v1/nodes", acme, second.body(t, 1)); code != 201 {
		t.Fatalf("registering the second peer: %d %s", code, b)
	}
	wait("a second peer is desired and connected", func() bool {
		return get("consortium_agent_peer_set_changes_total") > changes && get("consortium_agent_peers_desired") == 2 &&
			get("consortium_agent_peers_connected") == 2
	})
	// It leaves: removed and disconnected. (By the administrator: a
	// member's own removal does not move the index in this version of the
	// registry, so waiting agents do not hear of it until the next change.)
	if code, b := r.do("DELETE", "/v1/nodes/"+second.id, r.Admin, nil); code != 200 {
		t.Fatalf("removing the second peer: %d %s", code, b)
	}
	wait("the removed peer is dropped", func() bool {
		return get("consortium_agent_reconcile_actions_total", "kind", "remove-peer") >= 1 && get("consortium_agent_peers_connected") == 1
	})
	// The administrator removes the agent's own node: the next renewal
	// finds the lease gone and the agent registers again.
	regs := get("consortium_agent_registrations_total", "result", "ok")
	if code, b := r.do("DELETE", "/v1/nodes/"+self.ID().String(), r.Admin, nil); code != 200 {
		t.Fatalf("removing the agent's node: %d %s", code, b)
	}
	wait("a lapsed renewal and a new registration", func() bool {
		return get("consortium_agent_renewals_total", "result", "lapsed") >= 1 &&
			get("consortium_agent_registrations_total", "result", "ok") > regs
	})
	// The client goes away and comes back.
	client.setDown(true)
	wait("client_up falls to 0", func() bool { return get("consortium_agent_client_up") == 0 })
	client.setDown(false)
	wait("client_up back to 1", func() bool { return get("consortium_agent_client_up") == 1 })
	// The registrar goes away: registrar_up falls. The agent then sends no
	// renewal until a probe gets an answer (capped backoff, issue 24), so
	// renewals_total{result="error"} counts at most the one renewal that
	// may have raced the outage's discovery.
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	wait("registrar_up 0", func() bool { return get("consortium_agent_registrar_up") == 0 })
	if v := get("consortium_agent_renewals_total", "result", "error"); v > 1 {
		t.Errorf("%v renewals sent to a registrar known to be down", v)
	}
	if v := get("consortium_agent_peers_connected"); v != 1 {
		t.Errorf("a registrar outage changed the connected peers to %v", v)
	}

	var missing []string
	for name, section := range documented(t) {
		if section == "agent" && !checked[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, n := range missing {
		t.Errorf("%s is documented but has no check here", n)
	}
}
