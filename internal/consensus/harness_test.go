package consensus

// The harness for the integration test: real geth v1.17 processes (through
// internal/gethtest, which runs each in its own process group and kills it
// when the test ends, also on failure) and in-process consensus Nodes on
// loopback, with a CometBFT genesis and keys made here with CometBFT's own
// helpers and a geth genesis made with go-ethereum's core.Genesis.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/consortium/consortium/internal/gethtest"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/prometheus/client_golang/prometheus"
)

// member is one validator: a geth and the consensus Node beside it.
type member struct {
	idx     int
	home    string
	p2pPort int
	id      string
	valAddr string // CometBFT validator address, upper-case hex; "" for a full node
	pv      *privval.FilePV
	fee     common.Address
	geth    *gethtest.Node
	jwt     []byte
	logf    *os.File
	reg     *prometheus.Registry // kept across restarts, as an agent would
	wrap    func(Engine) Engine

	mu   sync.Mutex
	node *Node
}

type cluster struct {
	t           *testing.T
	members     []*member
	funder      *ecdsa.PrivateKey
	chainID     *big.Int
	gethGenesis []byte
	doc         *cmttypes.GenesisDoc
	// slow scales the timing bars on an overloaded machine (calibrate).
	slow float64
	// fullAdmitted: the validators' sets hold the full nodes (a restarted
	// validator gets them back, as the agent would give them).
	fullAdmitted bool
}

// gethGenesis is the project's proof-of-stake genesis for geth 1.17 (the
// one in gethtest/testdata, embedded in gethtest) with an account of the test's
// funded, built as a core.Genesis.
func gethGenesis(t *testing.T, funder common.Address) ([]byte, *big.Int) {
	raw, err := gethtest.DefaultGenesis(gethtest.V117)
	if err != nil {
		t.Fatal(err)
	}
	var g core.Genesis
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	g.Alloc[funder] = types.Account{Balance: new(big.Int).Mul(big.NewInt(1e18), big.NewInt(1000))}
	out, err := json.Marshal(&g)
	if err != nil {
		t.Fatal(err)
	}
	return out, g.Config.ChainID
}

func freeTCPPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newCluster starts n geths and writes n CometBFT homes (one validator of
// equal power each); the consensus Nodes are started by startNode.
func newCluster(t *testing.T, n int) *cluster {
	for k, v := range gethCrashSafe {
		t.Setenv(k, v)
	}
	funder, _ := crypto.GenerateKey()
	c := &cluster{t: t, funder: funder, slow: 1}
	c.gethGenesis, c.chainID = gethGenesis(t, crypto.PubkeyToAddress(funder.PublicKey))
	var vals []cmttypes.GenesisValidator
	for i := range n {
		m := c.newMember(true)
		vals = append(vals, cmttypes.GenesisValidator{Address: m.pv.GetAddress(), PubKey: m.pv.Key.PubKey, Power: 10, Name: fmt.Sprintf("member-%d", i)})
	}
	c.doc = &cmttypes.GenesisDoc{
		ChainID:         "consortium-test",
		GenesisTime:     time.Now(),
		InitialHeight:   1,
		ConsensusParams: cmttypes.DefaultConsensusParams(),
		Validators:      vals,
	}
	if err := c.doc.ValidateAndComplete(); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.members {
		c.saveGenesis(m)
	}
	c.peerGeths()
	t.Cleanup(func() {
		for _, m := range c.members {
			m.stop()
		}
		if t.Failed() {
			for _, m := range c.members {
				t.Logf("---- consensus log of member %d (tail):\n%s", m.idx, tailFile(m.logf.Name(), 40))
			}
		}
		for _, m := range c.members {
			m.logf.Close()
			if os.Getenv("CONSORTIUM_CONSENSUS_DEBUG") != "" {
				keep := filepath.Join(os.TempDir(), fmt.Sprintf("consortium-consensus-debug-%d.log", m.idx))
				if b, err := os.ReadFile(m.logf.Name()); err == nil && os.WriteFile(keep, b, 0o644) == nil {
					t.Logf("member %d's log kept at %s", m.idx, keep)
				}
				if b, err := os.ReadFile(m.geth.LogPath()); err == nil {
					_ = os.WriteFile(strings.TrimSuffix(keep, ".log")+"-geth.log", b, 0o644)
				}
			}
		}
	})
	return c
}

// gethCrashSafe makes geth write every block's state to disk as it
// imports it, so a kill -9 loses no state. With the default path scheme
// geth keeps up to 128 blocks of state (and, on a quiet chain, everything
// since genesis) in memory; after a crash it rewinds to what is on disk
// and, when its header chain is ahead of that, switches itself to snap
// sync, where it imports no payload until a snap sync from its peers
// completes (and on a chain of a few dozen blocks that sync fails:
// "Beacon backfilling failed ... layer stale"). Deployments must run
// geth this way for the crash bars to hold; see the package doc. They are
// set in the environment (geth reads GETH_<FLAG>) because `geth init`,
// which gethtest runs without extra flags, must create the hash scheme too.
var gethCrashSafe = map[string]string{"GETH_STATE_SCHEME": "hash", "GETH_GCMODE": "archive"}

// newMember writes a CometBFT home (with a validator key when validator is
// set) and starts a geth for it.
func (c *cluster) newMember(validator bool) *member {
	t := c.t
	m := &member{idx: len(c.members), home: t.TempDir(), p2pPort: freeTCPPort(t), reg: prometheus.NewRegistry()}
	m.fee = common.BigToAddress(big.NewInt(int64(0xfee0 + m.idx)))
	for _, d := range []string{"config", "data"} {
		if err := os.MkdirAll(filepath.Join(m.home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	pv, err := privval.GenFilePV(filepath.Join(m.home, "config", "priv_validator_key.json"),
		filepath.Join(m.home, "data", "priv_validator_state.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if validator {
		pv.Save()
		m.pv = pv
		m.valAddr = strings.ToUpper(hex.EncodeToString(pv.GetAddress()))
	}
	nk, err := p2p.LoadOrGenNodeKey(filepath.Join(m.home, "config", "node_key.json"))
	if err != nil {
		t.Fatal(err)
	}
	m.id = string(nk.ID())
	m.jwt = crypto.Keccak256([]byte(fmt.Sprintf("jwt %d %d", m.idx, time.Now().UnixNano())))
	jwtPath := filepath.Join(m.home, "jwtsecret")
	if err := os.WriteFile(jwtPath, []byte(hex.EncodeToString(m.jwt)), 0o600); err != nil {
		t.Fatal(err)
	}
	m.geth = gethtest.Start(t, gethtest.Config{Genesis: c.gethGenesis, ExtraArgs: []string{"--authrpc.jwtsecret", jwtPath}})
	if m.logf, err = os.Create(filepath.Join(m.home, "consensus.log")); err != nil {
		t.Fatal(err)
	}
	c.members = append(c.members, m)
	return m
}

func (c *cluster) saveGenesis(m *member) {
	if err := c.doc.SaveAs(filepath.Join(m.home, "config", "genesis.json")); err != nil {
		c.t.Fatal(err)
	}
}

// addFullNode adds a member with no validator key (a tx or public node)
// whose peer set is the validators; it is not in theirs yet.
func (c *cluster) addFullNode() *member {
	m := c.newMember(false)
	c.saveGenesis(m)
	c.peerGeths()
	return m
}

// peerGeths connects every running geth to every other one over devp2p,
// the path transactions travel; a restarted geth has forgotten its peers.
func (c *cluster) peerGeths() {
	for _, a := range c.members {
		for _, b := range c.members {
			if a != b && a.geth.Running() && b.geth.Running() {
				var ok bool
				if err := a.geth.Call(&ok, "admin_addPeer", b.geth.Enode()); err != nil {
					c.t.Fatal(err)
				}
			}
		}
	}
}

// peers is m's initial peer set: every validator but itself (a full node
// joins the validators' sets only when SetPeers says so).
func (m *member) peers(c *cluster) []string {
	var out []string
	for _, o := range c.members {
		if o != m && (o.pv != nil || c.fullAdmitted) {
			out = append(out, o.addr())
		}
	}
	return out
}

// testLogLevel is Info, or Debug (CometBFT's own Info lines included) with
// CONSORTIUM_CONSENSUS_DEBUG=1, for reading a run's timeline.
func testLogLevel() slog.Level {
	if os.Getenv("CONSORTIUM_CONSENSUS_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func (m *member) addr() string { return fmt.Sprintf("%s@127.0.0.1:%d", m.id, m.p2pPort) }

// startNode makes and starts a fresh consensus Node for m (a Node runs
// once, so a restart is a new one on the same home).
func (c *cluster) startNode(m *member) {
	c.t.Helper()
	if err := c.tryStartNode(m); err != nil {
		c.t.Fatal(err)
	}
}

// startNodes starts several members' Nodes at once, as independent members
// would come back.
func (c *cluster) startNodes(ms ...*member) {
	c.t.Helper()
	errs := make(chan error, len(ms))
	for _, m := range ms {
		go func() { errs <- c.tryStartNode(m) }()
	}
	for range ms {
		if err := <-errs; err != nil {
			c.t.Fatal(err)
		}
	}
}

func (c *cluster) tryStartNode(m *member) error {
	n, err := New(Config{
		Home:         m.home,
		Moniker:      fmt.Sprintf("member-%d", m.idx),
		P2PListen:    "tcp://127.0.0.1:" + strconv.Itoa(m.p2pPort),
		EngineURL:    "http://127.0.0.1:" + strconv.Itoa(m.geth.AuthRPCPort()),
		JWTSecret:    m.jwt,
		FeeRecipient: m.fee,
		BlockTime:    time.Second,
		Peers:        m.peers(c),
		Logger:       slog.New(slog.NewTextHandler(m.logf, &slog.HandlerOptions{Level: testLogLevel()})),
		Registerer:   m.reg,
		wrapEngine:   m.wrap,
	})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		return fmt.Errorf("member %d: %w", m.idx, err)
	}
	m.mu.Lock()
	m.node = n
	m.mu.Unlock()
	return nil
}

// stop stops m's consensus Node and kills its geth with SIGKILL.
func (m *member) stop() {
	m.mu.Lock()
	n := m.node
	m.node = nil
	m.mu.Unlock()
	if n != nil {
		_ = n.Stop()
	}
	m.geth.Kill()
}

// head is geth's head block number and hash, read over IPC.
func (m *member) head(t *testing.T) (uint64, common.Hash) {
	var h struct {
		Number hexutil.Uint64 `json:"number"`
		Hash   common.Hash    `json:"hash"`
	}
	if err := m.geth.Call(&h, "eth_getBlockByNumber", "latest", false); err != nil {
		t.Fatal(err)
	}
	return uint64(h.Number), h.Hash
}

func (m *member) hashAt(t *testing.T, num uint64) common.Hash {
	var h *struct {
		Hash common.Hash `json:"hash"`
	}
	if err := m.geth.Call(&h, "eth_getBlockByNumber", hexutil.Uint64(num), false); err != nil {
		t.Fatal(err)
	}
	if h == nil {
		return common.Hash{}
	}
	return h.Hash
}

// minHead is the lowest geth head among members.
func (c *cluster) minHead(members ...*member) uint64 {
	low := ^uint64(0)
	for _, m := range members {
		n, _ := m.head(c.t)
		low = min(low, n)
	}
	return low
}

// checkSameChain asserts that every member's geth has the same block hash
// at every height up to the lowest head, and returns that height.
func (c *cluster) checkSameChain() uint64 {
	top := c.minHead(c.members...)
	for num := uint64(0); num <= top; num++ {
		want := c.members[0].hashAt(c.t, num)
		for _, m := range c.members[1:] {
			if got := m.hashAt(c.t, num); got != want {
				c.t.Fatalf("block %d: member %d has %s, member 0 has %s", num, m.idx, got, want)
			}
		}
	}
	return top
}

func tailFile(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	all := bytes.Split(b, []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}
