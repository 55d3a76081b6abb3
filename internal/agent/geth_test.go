package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/bootnode"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// The suite below runs real geth processes, real agents, a real bootnode
// per member and a registrar on a real SQLite file, all on 127.0.0.1.

const testTTL = 4 * time.Second

type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

type member struct {
	name string
	cred string
	boot *bootnode.Bootnode
}

type tnode struct {
	name    string
	m       *member
	role    string
	geth    *gethtest.Node
	cancel  context.CancelFunc
	done    chan struct{}
	agent   *agent.Agent
	pubPort int
	tweak   func(*agent.Config) // applied to the agent's config at each start
}

type suite struct {
	t       testing.TB
	version string
	reg     *testRegistrar
	log     *slog.Logger
	logs    *logBuf
	members map[string]*member
	nodes   []*tnode
}

func newSuite(t testing.TB, version string) *suite { return newSuiteTTL(t, version, testTTL) }

// newSuiteTTL is newSuite with the registrar granting leases of ttl.
func newSuiteTTL(t testing.TB, version string, ttl time.Duration) *suite {
	gethtest.Binary(t, version) // skips (or fails under CONSORTIUM_REQUIRE_GETH) without geth
	logs := &logBuf{}
	var w io.Writer = logs
	if p := os.Getenv("CONSORTIUM_TEST_LOG"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			t.Cleanup(func() { f.Close() })
			w = io.MultiWriter(logs, f)
		}
	}
	log := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s := &suite{t: t, version: version, logs: logs, log: log, members: map[string]*member{}}
	t.Cleanup(func() {
		if t.Failed() {
			logs.mu.Lock()
			out := logs.b.String()
			logs.mu.Unlock()
			if len(out) > 60000 {
				out = out[len(out)-60000:]
			}
			t.Logf("agent and registrar logs:\n%s", out)
		}
	})
	s.reg = startRegistrar(t, log, ttl)
	return s
}

func (s *suite) addMember(name string) *member {
	m := &member{name: name, cred: s.reg.addMember(name)}
	b, err := bootnode.New(bootnode.Config{ListenAddr: "127.0.0.1:0", DataDir: s.t.TempDir(), NoLivenessCheck: true})
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := b.Start(ctx); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		agent.Announce(ctx, s.reg.client(m.cred), "bootnode", b.ENR, s.log.With("bootnode", name))
	}()
	s.t.Cleanup(func() {
		defer b.Close() // even if Announce hangs
		cancel()
		testutil.Wait(s.t, time.Minute, "bootnode "+name+"'s Announce to return after cancel", done)
	})
	m.boot = b
	s.members[name] = m
	return m
}

// startNode starts geth and its agent.
func (s *suite) startNode(m *member, name, role string) *tnode {
	s.t.Helper()
	return s.startNodeWith(m, name, role, gethtest.Config{}, nil)
}

// startNodeWith starts geth with gc (its version, bootnode and KeepConfig
// set here) and its agent with tweak applied.
func (s *suite) startNodeWith(m *member, name, role string, gc gethtest.Config, tweak func(*agent.Config)) *tnode {
	s.t.Helper()
	gc.Version, gc.Bootnodes, gc.KeepConfig = s.version, []string{m.boot.Enode()}, true
	g := gethtest.Start(s.t, gc)
	n := &tnode{name: name, m: m, role: role, geth: g, tweak: tweak}
	s.nodes = append(s.nodes, n)
	s.startAgent(n)
	return n
}

func (s *suite) startAgent(n *tnode) {
	s.t.Helper()
	ec, err := ethclient.Dial(context.Background(), ethclient.Config{Endpoint: n.geth.IPCPath()})
	if err != nil {
		s.t.Fatal(err)
	}
	cfg := agent.Config{
		Client: ec, Registrar: s.reg.client(n.m.cred), Key: n.geth.Key(), KeyFile: n.geth.KeyPath(), Role: n.role,
		StateDir: s.t.TempDir(), ConfigPath: n.geth.ConfigPath(), ListenAddr: n.geth.ListenAddr(),
		RetryMax: time.Second, WatchWait: 30 * time.Second, Logger: s.log.With("node", n.name),
	}
	if n.role == "public" {
		if n.pubPort == 0 {
			n.pubPort = forwarder(s.t, n.geth.ListenAddr())
		}
		cfg.PublicIP, cfg.PublicPort = net.ParseIP("127.0.0.1"), n.pubPort
	}
	if n.tweak != nil {
		n.tweak(&cfg)
	}
	a, err := agent.New(cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.agent, n.cancel, n.done = a, cancel, make(chan struct{})
	go func() {
		defer close(n.done)
		defer ec.Close()
		if err := a.Run(ctx); err != nil {
			s.t.Errorf("agent %s: %v", n.name, err)
		}
	}()
	s.t.Cleanup(func() { n.stopAgent(s.t) })
}

// stopAgent stops n's agent, failing t (the test of the calling goroutine)
// if its Run does not return.
func (n *tnode) stopAgent(t testing.TB) {
	t.Helper()
	if n.cancel != nil {
		n.cancel()
		n.cancel = nil
		testutil.Wait(t, time.Minute, "agent "+n.name+"'s Run to return after cancel", n.done)
	}
}

func (n *tnode) peerIDs(t testing.TB) map[enode.ID]bool {
	var peers []struct {
		ID string `json:"id"`
	}
	if err := n.geth.Call(&peers, "admin_peers"); err != nil {
		return nil
	}
	out := map[enode.ID]bool{}
	for _, p := range peers {
		id, err := enode.ParseID(p.ID)
		if err == nil {
			out[id] = true
		}
	}
	return out
}

// expected returns the intended mesh over the running nodes.
func (s *suite) expected(running []*tnode) map[*tnode][]*tnode {
	want := map[*tnode][]*tnode{}
	for _, a := range running {
		for _, b := range running {
			if a == b {
				continue
			}
			if a.m == b.m || (a.role == "public" && b.role == "public") {
				want[a] = append(want[a], b)
			}
		}
	}
	return want
}

// meshDiff describes how actual connections differ from the intended mesh.
func (s *suite) meshDiff(running []*tnode) string {
	var diffs []string
	want := s.expected(running)
	for _, n := range running {
		got := n.peerIDs(s.t)
		exp := map[enode.ID]string{}
		for _, p := range want[n] {
			exp[p.geth.ID()] = p.name
		}
		for id, name := range exp {
			if !got[id] {
				diffs = append(diffs, n.name+" lacks "+name)
			}
		}
		for id := range got {
			if _, ok := exp[id]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s has unexpected peer %s", n.name, id.TerminalString()))
			}
		}
	}
	sort.Strings(diffs)
	return strings.Join(diffs, "; ")
}

func (s *suite) waitMesh(running []*tnode, within time.Duration) time.Duration {
	s.t.Helper()
	start := time.Now()
	logged := false
	return testutil.Eventually(s.t, within, "mesh formed", func() error {
		d := s.meshDiff(running)
		if d == "" {
			return nil
		}
		if !logged && time.Since(start) > 5*time.Second {
			s.t.Logf("mesh still incomplete after 5 s: %s", d)
			logged = true
		}
		return errors.New(d)
	})
}

func TestAgentsWithGeth117(t *testing.T) { runAgentSuite(t, gethtest.V117) }
func TestAgentsWithGeth113(t *testing.T) { runAgentSuite(t, gethtest.V113) }

func runAgentSuite(t *testing.T, version string) {
	if testing.Short() {
		t.Skip("starts real geth processes")
	}
	s := newSuite(t, version)
	a, b := s.addMember("alpha"), s.addMember("beta")
	aVal := s.startNode(a, "alpha-validator", "validator")
	aTx := s.startNode(a, "alpha-tx", "tx")
	aPub := s.startNode(a, "alpha-public", "public")
	bVal := s.startNode(b, "beta-validator", "validator")
	bTx := s.startNode(b, "beta-tx", "tx")
	bPub := s.startNode(b, "beta-public", "public")
	running := []*tnode{aVal, aTx, aPub, bVal, bTx, bPub}

	t.Run("FullMesh", func(t *testing.T) {
		d := s.waitMesh(running, 60*time.Second)
		t.Logf("%s: intended mesh of 6 nodes formed %v after the last agent started", version, d)
	})

	if os.Getenv("CONSORTIUM_TEST_MESH_ONLY") != "" {
		return
	}
	t.Run("NoPrivateEndpointCrosses", func(t *testing.T) {
		ctx := context.Background()
		bc := s.reg.client(b.cred)
		aPrivPort := ":" + strconv.Itoa(aPub.geth.P2PPort())
		var bodies []string
		nodes, err := bc.Nodes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, fmt.Sprint(nodes))
		for _, n := range []*tnode{bVal, bTx, bPub} {
			for _, f := range []string{"json", "toml", "bootnodes", "enr"} {
				txt, err := bc.PeersText(ctx, n.geth.ID().String(), f)
				if err != nil {
					t.Fatal(err)
				}
				bodies = append(bodies, txt)
			}
			enrs, _ := bc.PeersText(ctx, n.geth.ID().String(), "enr")
			for _, e := range strings.Fields(enrs) {
				if rec, err := enode.Parse(enode.ValidSchemes, e); err == nil && rec.TCP() == aPub.geth.P2PPort() {
					t.Errorf("an ENR for %s carries alpha-public's private port", n.name)
				}
			}
		}
		all := strings.Join(bodies, "\n")
		for _, leak := range []string{aVal.geth.ID().String(), aTx.geth.ID().String(), aPrivPort} {
			if strings.Contains(all, leak) {
				t.Errorf("beta can read %q (alpha's private side)", leak)
			}
		}
		if !strings.Contains(all, ":"+strconv.Itoa(aPub.pubPort)) {
			t.Error("beta does not see alpha-public's public endpoint")
		}
	})

	var aTx2 *tnode
	t.Run("NodeAddedWithoutRestart", func(t *testing.T) {
		start := time.Now()
		aTx2 = s.startNode(a, "alpha-tx2", "tx")
		running = append(running, aTx2)
		d := s.waitMesh(running, 30*time.Second)
		t.Logf("%s: new node peered with every intended peer %v after its geth started (%v total)", version, d, time.Since(start))
	})

	t.Run("ForeignNodeIsDisconnected", func(t *testing.T) {
		f := gethtest.Start(t, gethtest.Config{Version: version})
		if err := f.Call(nil, "admin_addPeer", aVal.geth.Enode()); err != nil {
			t.Fatal(err)
		}
		// It may connect for a few milliseconds (TestForeignGethGetsNoChain
		// measures them); the agent must drop it and keep it out.
		time.Sleep(2 * time.Second)
		for i := 0; i < 20; i++ {
			if aVal.peerIDs(t)[f.ID()] {
				t.Fatal("a foreign node stays connected to alpha-validator")
			}
			time.Sleep(100 * time.Millisecond)
		}
		if d := s.meshDiff(running); d != "" {
			t.Fatalf("mesh damaged: %s", d)
		}
	})

	t.Run("GethRestartPeersComeBack", func(t *testing.T) {
		aVal.geth.Stop()
		if err := aVal.geth.Restart(); err != nil {
			t.Fatal(err)
		}
		d := s.waitMesh(running, 30*time.Second)
		t.Logf("%s: restarted geth back in the full mesh after %v", version, d)
		cfg, _ := os.ReadFile(aVal.geth.ConfigPath())
		if !strings.Contains(string(cfg), aTx.geth.ID().String()[:16]) && !strings.Contains(string(cfg), "StaticNodes") {
			t.Fatalf("cold-start config lacks the peers:\n%s", cfg)
		}
	})

	t.Run("KilledNodeLeavesWithinTTL", func(t *testing.T) {
		aTx2.geth.Kill()
		aTx2.stopAgent(t)
		killed := time.Now()
		ac := s.reg.client(a.cred)
		gone := testutil.EventuallyTrue(t, testTTL+5*time.Second, "killed node leaves alpha-validator's peer set", func() bool {
			p, err := ac.Peers(context.Background(), aVal.geth.ID().String())
			if err != nil {
				return false
			}
			for _, e := range p.Static {
				if strings.Contains(e, aTx2.geth.ID().String()[:20]) || strings.Contains(e, fmt.Sprintf("%x", aTx2.geth.Node().Pubkey().X)[:10]) {
					return false
				}
			}
			return true
		})
		if gone > testTTL+time.Second+500*time.Millisecond {
			t.Fatalf("killed node left after %v, want within TTL (%v) + 1 s", gone, testTTL)
		}
		t.Logf("%s: killed node left every peer set %v after the kill (TTL %v)", version, time.Since(killed), testTTL)
		running = running[:len(running)-1]
		s.waitMesh(running, 15*time.Second)
	})

	t.Run("RegistrarOutageDropsNoPeer", func(t *testing.T) {
		s.reg.stop()
		outage := 2*testTTL + time.Second
		end := time.Now().Add(outage)
		for time.Now().Before(end) {
			if d := s.meshDiff(running); d != "" && strings.Contains(d, "lacks") {
				t.Fatalf("a peer dropped during the registrar outage: %s", d)
			}
			time.Sleep(250 * time.Millisecond)
		}
		s.reg.start()
		back := time.Now()
		// Leases come back within one TTL: every node renews against the new process.
		testutil.EventuallyTrue(t, testTTL+2*time.Second, "every lease renewed after the registrar returned", func() bool {
			live := 0
			for _, n := range s.reg.Registry.Nodes(registry.Principal{Name: "admin", Admin: true}) {
				if n.Live && n.Expires.After(back.Add(testTTL)) {
					live++
				}
			}
			return live >= len(running)+2 // + two bootnodes
		})
		// Watches recover by themselves: a new node reaches its peers.
		n := s.startNode(b, "beta-tx2", "tx")
		running = append(running, n)
		d := s.waitMesh(running, 30*time.Second)
		t.Logf("%s: after a %v registrar outage, a new node reached the full mesh in %v", version, outage, d)
	})
}
