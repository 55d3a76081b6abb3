package bfttest

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/proctest"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// bin is the consortium binary, built once by TestMain.
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("bfttest: skipped in -short mode (real geth and consortium processes)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "bfttest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bfttest:", err)
		os.Exit(1)
	}
	bin, err = proctest.Build(dir)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "bfttest:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is one consortium made by `consortium init --consensus bft`, its
// registrar and the nodes started so far.
type cluster struct {
	t        testing.TB
	ps       *proctest.Procs
	dir      string
	man      consortiuminit.Manifest
	regURL   string
	regAdmin string

	// rpcPorts are CometBFT RPC ports chosen before the nodes start (by
	// "member/role"), for a registrar that follows the chain from them.
	rpcPorts map[string]int

	mu    sync.Mutex
	nodes []*node
}

// node is one geth with its agent and consensus process beside it.
type node struct {
	c      *cluster
	member string
	spec   consortiuminit.Node
	name   string // "a/validator-1"
	geth   *gethtest.Node
	agent  *proctest.Proc
	args   []string // the agent's command line, for a restart
	cmtRPC int      // CometBFT's RPC port (loopback)
}

// newCluster creates a consortium of members, each with a validator, a tx
// and a public node, and starts its registrar.
func newCluster(t *testing.T, members ...string) *cluster {
	return newClusterFollowing(t, false, members...)
}

// newClusterFollowing is newCluster whose registrar, when follow is true,
// follows the chain (--chain-rpc) through every member's validator's
// consensus RPC, a majority of them agreeing.
func newClusterFollowing(t *testing.T, follow bool, members ...string) *cluster {
	gethtest.Binary(t, gethtest.V117) // skip (or fail in CI) before any work
	c := &cluster{t: t, ps: proctest.New(t), dir: t.TempDir(), rpcPorts: map[string]int{}}
	var regExtra []string
	if follow {
		ports := proctest.FreePorts(t, len(members))
		var urls []string
		for i, m := range members {
			c.rpcPorts[m+"/"+string(consortiuminit.RoleValidator)] = ports[i]
			urls = append(urls, "127.0.0.1:"+strconv.Itoa(ports[i]))
		}
		regExtra = []string{"--chain-rpc", strings.Join(urls, ",")}
	}
	c.run("init", "--members", strings.Join(members, ","), "--out", c.dir, "--nodes", "validator,tx,public")
	b, err := os.ReadFile(filepath.Join(c.dir, consortiuminit.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &c.man); err != nil {
		t.Fatal(err)
	}
	if c.man.Consensus != consortiuminit.ConsensusBFT {
		t.Fatalf("init made a %q consortium by default, want bft", c.man.Consensus)
	}
	port := proctest.FreePorts(t, 1)[0]
	c.regURL = "http://127.0.0.1:" + strconv.Itoa(port)
	regArgs := append([]string{"registrar", "--listen", "127.0.0.1:" + strconv.Itoa(port),
		"--data", filepath.Join(t.TempDir(), "registrar"), "--seed", c.path(c.man.Seed),
		"--ttl", "10s", "--allow-loopback-endpoints"}, regExtra...)
	c.ps.Start("registrar", bin, regArgs...)
	c.regAdmin = c.read(consortiuminit.AdminCredentialFile)
	c.eventually(30*time.Second, "the registrar answers", func() error {
		resp, err := http.Get(c.regURL + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	return c
}

func (c *cluster) path(rel string) string { return filepath.Join(c.dir, filepath.FromSlash(rel)) }

func (c *cluster) read(rel string) string {
	b, err := os.ReadFile(c.path(rel))
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// run runs a consortium command to its end.
func (c *cluster) run(args ...string) {
	c.t.Helper()
	p := c.ps.Start(args[0], bin, args...)
	<-p.Done()
	if p.ExitCode() != 0 {
		b, _ := os.ReadFile(c.ps.LogPath(args[0]))
		c.t.Fatalf("consortium %s failed (exit %d):\n%s", args[0], p.ExitCode(), proctest.Tail(b, 30))
	}
}

func (c *cluster) member(name string) consortiuminit.Member {
	for _, m := range c.man.Members {
		if m.Name == name {
			return m
		}
	}
	c.t.Fatalf("no member %s", name)
	return consortiuminit.Member{}
}

// start starts member's node of role (its first), geth and then its agent.
func (c *cluster) start(member string, role consortiuminit.Role) *node {
	c.t.Helper()
	m := c.member(member)
	var spec *consortiuminit.Node
	for i := range m.Nodes {
		if m.Nodes[i].Role == role {
			spec = &m.Nodes[i]
			break
		}
	}
	if spec == nil {
		c.t.Fatalf("member %s has no %s node", member, role)
	}
	key, err := crypto.LoadECDSA(c.path(spec.Nodekey))
	if err != nil {
		c.t.Fatal(err)
	}
	genesis, err := os.ReadFile(c.path(c.man.Genesis))
	if err != nil {
		c.t.Fatal(err)
	}
	n := &node{c: c, member: member, spec: *spec, name: member + "/" + spec.Name}
	// CrashSafe: --state.scheme hash --gcmode archive, as a BFT chain's
	// geth runs (internal/consensus/doc.go): a geth killed here comes back
	// at its height, as in the deployments.
	n.geth = gethtest.Start(c.t, gethtest.Config{
		Version: gethtest.V117, Genesis: genesis, NodeKey: key, CrashSafe: true,
		ExtraArgs: []string{"--authrpc.jwtsecret", c.path(spec.JWTSecret)},
	})
	ports := proctest.FreePorts(c.t, 2)
	if p, ok := c.rpcPorts[member+"/"+string(role)]; ok {
		ports[1] = p
	}
	n.cmtRPC = ports[1]
	n.args = []string{"agent", "run",
		"--registrar", c.regURL, "--credential-file", c.path(m.Credential),
		"--role", string(role), "--nodekey", c.path(spec.Nodekey), "--rpc", n.geth.IPCPath(),
		"--state-dir", filepath.Join(c.t.TempDir(), "agent-state"), "--listen", "",
		"--consensus-home", c.path(spec.CometHome),
		"--consensus-p2p", "127.0.0.1:" + strconv.Itoa(ports[0]),
		"--consensus-rpc", "127.0.0.1:" + strconv.Itoa(ports[1]),
		"--engine", "http://127.0.0.1:" + strconv.Itoa(n.geth.AuthRPCPort()),
		"--jwt-secret", c.path(spec.JWTSecret),
		"--fee-recipient", m.FeeRecipient.Address.Hex(),
	}
	if role == consortiuminit.RolePublic {
		n.args = append(n.args, "--public-ip", "127.0.0.1")
	}
	n.agent = c.ps.Start(n.logName(), bin, n.args...)
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	return n
}

func (n *node) logName() string { return strings.ReplaceAll(n.name, "/", "-") + "-agent" }

// kill stops the node's geth and agent with SIGKILL, as a crash would.
func (n *node) kill() {
	n.agent.Kill()
	n.geth.Kill()
}

// restart starts geth again on its data and then the agent.
func (n *node) restart() {
	n.c.t.Helper()
	if err := n.geth.Restart(); err != nil {
		n.c.t.Fatalf("%s: geth restart: %v", n.name, err)
	}
	n.agent = n.c.ps.Start(n.logName(), bin, n.args...)
}

func (n *node) running() bool { return !n.agent.Exited() && n.geth.Running() }

// head is geth's latest block number.
func (n *node) head() (uint64, error) {
	var h hexutil.Uint64
	err := n.geth.Call(&h, "eth_blockNumber")
	return uint64(h), err
}

// block is the header fields the tests compare.
type block struct {
	Number   hexutil.Uint64 `json:"number"`
	Hash     common.Hash    `json:"hash"`
	Miner    common.Address `json:"miner"`
	Time     hexutil.Uint64 `json:"timestamp"`
	TxHashes []common.Hash  `json:"transactions"`
}

func (n *node) block(num uint64) (*block, error) {
	var b *block
	if err := n.geth.Call(&b, "eth_getBlockByNumber", hexutil.Uint64(num), false); err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("%s has no block %d", n.name, num)
	}
	return b, nil
}

// running returns the nodes whose processes run.
func (c *cluster) running() []*node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*node
	for _, n := range c.nodes {
		if n.running() {
			out = append(out, n)
		}
	}
	return out
}

// minHead is the lowest head among nodes (an error if one does not answer).
func minHead(nodes []*node) (uint64, error) {
	var low uint64
	for i, n := range nodes {
		h, err := n.head()
		if err != nil {
			return 0, fmt.Errorf("%s: %v", n.name, err)
		}
		if i == 0 || h < low {
			low = h
		}
	}
	return low, nil
}

// waitHeight waits until every node in nodes has block h; it returns how
// long that took.
func (c *cluster) waitHeight(nodes []*node, h uint64, within time.Duration) time.Duration {
	c.t.Helper()
	start := time.Now()
	c.eventually(within, fmt.Sprintf("every node at height %d", h), func() error {
		low, err := minHead(nodes)
		if err != nil {
			return err
		}
		if low < h {
			return fmt.Errorf("lowest head %d", low)
		}
		return nil
	})
	return time.Since(start)
}

// eventually polls f until it returns nil, failing the test with f's last
// error after within.
func (c *cluster) eventually(within time.Duration, what string, f func() error) {
	c.t.Helper()
	testutil.Eventually(c.t, within, what, f)
}
