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
)

// member is one validator: a geth and the consensus Node beside it.
type member struct {
	idx     int
	home    string
	p2pPort int
	id      string
	valAddr string // CometBFT validator address, upper-case hex
	fee     common.Address
	geth    *gethtest.Node
	jwt     []byte
	logf    *os.File
	wrap    func(Engine) Engine

	mu   sync.Mutex
	node *Node
}

type cluster struct {
	t       *testing.T
	members []*member
	funder  *ecdsa.PrivateKey
	chainID *big.Int
}

// gethGenesis is the project's proof-of-stake genesis for geth 1.17 (the
// one in shared/facts, embedded in gethtest) with an account of the test's
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
	funder, _ := crypto.GenerateKey()
	genesis, chainID := gethGenesis(t, crypto.PubkeyToAddress(funder.PublicKey))
	c := &cluster{t: t, funder: funder, chainID: chainID}
	var vals []cmttypes.GenesisValidator
	for i := range n {
		m := &member{idx: i, home: t.TempDir(), p2pPort: freeTCPPort(t)}
		m.fee = common.BigToAddress(big.NewInt(int64(0xfee0 + i)))
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
		pv.Save()
		nk, err := p2p.LoadOrGenNodeKey(filepath.Join(m.home, "config", "node_key.json"))
		if err != nil {
			t.Fatal(err)
		}
		m.id = string(nk.ID())
		m.valAddr = strings.ToUpper(hex.EncodeToString(pv.GetAddress()))
		pub, _ := pv.GetPubKey()
		vals = append(vals, cmttypes.GenesisValidator{Address: pv.GetAddress(), PubKey: pub, Power: 10, Name: fmt.Sprintf("member-%d", i)})

		m.jwt = crypto.Keccak256([]byte(fmt.Sprintf("jwt %d %d", i, time.Now().UnixNano())))
		jwtPath := filepath.Join(m.home, "jwtsecret")
		if err := os.WriteFile(jwtPath, []byte(hex.EncodeToString(m.jwt)), 0o600); err != nil {
			t.Fatal(err)
		}
		m.geth = gethtest.Start(t, gethtest.Config{Genesis: genesis, ExtraArgs: []string{"--authrpc.jwtsecret", jwtPath}})
		if m.logf, err = os.Create(filepath.Join(m.home, "consensus.log")); err != nil {
			t.Fatal(err)
		}
		c.members = append(c.members, m)
	}
	doc := &cmttypes.GenesisDoc{
		ChainID:         "consortium-test",
		GenesisTime:     time.Now(),
		InitialHeight:   1,
		ConsensusParams: cmttypes.DefaultConsensusParams(),
		Validators:      vals,
	}
	if err := doc.ValidateAndComplete(); err != nil {
		t.Fatal(err)
	}
	for _, m := range c.members {
		if err := doc.SaveAs(filepath.Join(m.home, "config", "genesis.json")); err != nil {
			t.Fatal(err)
		}
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
		}
	})
	return c
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

func (m *member) peers(c *cluster) []string {
	var out []string
	for _, o := range c.members {
		if o != m {
			out = append(out, fmt.Sprintf("%s@127.0.0.1:%d", o.id, o.p2pPort))
		}
	}
	return out
}

// startNode makes and starts a fresh consensus Node for m (a Node runs
// once, so a restart is a new one on the same home).
func (c *cluster) startNode(m *member) {
	c.t.Helper()
	n, err := New(Config{
		Home:         m.home,
		Moniker:      fmt.Sprintf("member-%d", m.idx),
		P2PListen:    "tcp://127.0.0.1:" + strconv.Itoa(m.p2pPort),
		EngineURL:    "http://127.0.0.1:" + strconv.Itoa(m.geth.AuthRPCPort()),
		JWTSecret:    m.jwt,
		FeeRecipient: m.fee,
		BlockTime:    time.Second,
		Peers:        m.peers(c),
		Logger:       slog.New(slog.NewTextHandler(m.logf, &slog.HandlerOptions{Level: slog.LevelInfo})),
		wrapEngine:   m.wrap,
	})
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := n.Start(ctx); err != nil {
		c.t.Fatalf("member %d: %v", m.idx, err)
	}
	m.mu.Lock()
	m.node = n
	m.mu.Unlock()
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

// waitFor polls cond every 50 ms until it holds or within passes, and
// returns how long it took.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
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
