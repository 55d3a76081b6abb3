package bfttest

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/consortium/consortium/internal/proctest"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	gethclient "github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// maxLagBlocks is how far behind the highest head any node may fall while
// a public node's key is rotated. Blocks reach a BFT node from its own
// consensus process, and member a's validator and tx node hear the chain
// only through a's public node (the sentry pattern), whose consensus
// process waits for its geth while geth restarts: they fall behind by
// about that restart, in blocks, and catch up. Generous: a loaded 2-core
// machine.
const maxLagBlocks = 30

// TestNodeKeyRotationUnderLoad is issue 21's node-key bar: four members,
// each a validator and a public node, and a tx node at a through which
// transfers flow all along. a's public node gets a new node key the way
// its operator gives it one: the key file rewritten, geth restarted. Its
// agent (and the consensus process in it) keeps running, registers the
// new record and deletes the old. Then: every geth peer of the node (a's
// validator and tx node, the other members' public nodes) is connected to
// the new ID; the old ID is in no registrar answer within the lease;
// and the node's peers missed no block: every height is on every node with
// the same hash, no head fell more than maxLagBlocks behind, and every
// transfer is final on every node.
func TestNodeKeyRotationUnderLoad(t *testing.T) {
	c := newCluster(t, members...)
	vals, pubs := map[string]*node{}, map[string]*node{}
	for _, m := range members {
		vals[m] = c.start(m, consortiuminit.RoleValidator)
		pubs[m] = c.start(m, consortiuminit.RolePublic)
	}
	txNode := c.start("a", consortiuminit.RoleTx)
	c.waitHeight(c.running(), 3, 3*time.Minute)
	rotated := pubs["a"]
	// Its geth peers: its member's nodes, the other members' public nodes.
	peers := []*node{vals["a"], txNode, pubs["b"], pubs["c"], pubs["d"]}
	oldID := rotated.id()
	c.eventually(90*time.Second, "a's public node peered with its whole set", func() error {
		return c.peeredWithAll(peers, oldID)
	})

	all := c.running()
	lag := watchLag(all)
	final := watchFinality(all)
	defer final.close()
	load := startLoad(txNode, c.memberKey("a"), 150*time.Millisecond)
	time.Sleep(5 * time.Second) // load before the rotation

	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	newID := enode.PubkeyToIDV4(&key.PublicKey).String()
	// The operator's steps: the key file (the agent's --nodekey) first,
	// then geth restarted with it.
	if err := crypto.SaveECDSA(c.path(rotated.spec.Nodekey), key); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := rotated.geth.RestartWithKey(key); err != nil {
		t.Fatal(err)
	}
	up := time.Since(start)
	if rotated.id() != newID || rotated.geth.ID().String() != newID {
		t.Fatalf("a's public node runs %s, want the new %s", rotated.geth.ID(), newID)
	}

	const lease = 10 * time.Second // the registrar's --ttl
	c.eventually(lease+30*time.Second, "the old ID out of every registrar answer", func() error {
		return c.inNoAnswer(append(peers, rotated), oldID)
	})
	gone := time.Since(start)
	c.eventually(90*time.Second, "every peer of a's public node connected to its new ID", func() error {
		return c.peeredWithAll(peers, newID)
	})
	moved := time.Since(start)
	if rotated.agent.Exited() {
		t.Fatalf("a's public node's agent (and consensus process) stopped when its geth got a new key:\n%s", c.agentLog(rotated))
	}
	time.Sleep(10 * time.Second) // load after the move
	sent, err := load.stop()
	if err != nil {
		t.Fatal(err)
	}
	c.eventually(90*time.Second, fmt.Sprintf("%d transfers final on all %d nodes", len(sent), len(all)), func() error {
		missing := 0
		for _, h := range sent {
			if _, ok := final.finalEverywhere(h, len(all)); !ok {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d not yet in a block on every node", missing)
		}
		return nil
	})
	lags := lag.stop()
	top, err := minHead(all)
	if err != nil {
		t.Fatal(err)
	}
	c.sameChain(all, 1, top)
	var worst string
	var most uint64
	for _, n := range all {
		if lags[n.name] >= most {
			most, worst = lags[n.name], n.name
		}
	}
	t.Logf("FIGURE a's public node's key rotated under load (%d transfers, one per 150 ms from a's tx node), from geth's stop: geth up with the new key after %v, the old ID out of every answer after %v (lease %v), every peer connected to the new ID after %v; no height missing on %d nodes up to %d; largest lag behind the highest head %d blocks (%s) (load %s)",
		len(sent), up.Round(time.Millisecond), gone.Round(time.Millisecond), lease, moved.Round(time.Millisecond), len(all), top, most, worst, loadavg())
	if gone > lease {
		t.Errorf("the old ID stayed in the answers %v after the rotation; the lease is %v", gone, lease)
	}
	if most > maxLagBlocks {
		t.Errorf("%s fell %d blocks behind the highest head during the rotation (bound %d)", worst, most, maxLagBlocks)
	}
}

// peeredWithAll checks that each of nodes has id among its geth peers.
func (c *cluster) peeredWithAll(nodes []*node, id string) error {
	for _, n := range nodes {
		if err := c.peersWith(n, map[string]bool{id: true}, true); err != nil {
			return err
		}
	}
	return nil
}

// inNoAnswer checks that no node's registrar answer (asked as the
// administrator) names node id.
func (c *cluster) inNoAnswer(nodes []*node, id string) error {
	for _, n := range nodes {
		body := c.registrarGet(c.regAdmin, "/v1/nodes/"+n.id()+"/peers?format=enr")
		if body == "" {
			return fmt.Errorf("%s: no answer", n.name)
		}
		for _, rec := range strings.Fields(body) {
			if p, err := enode.Parse(enode.ValidSchemes, rec); err == nil && p.ID().String() == id {
				return fmt.Errorf("%s's answer names %s", n.name, id[:16])
			}
		}
	}
	return nil
}

// agentLog is the tail of n's agent's log.
func (c *cluster) agentLog(n *node) string {
	b, _ := os.ReadFile(c.ps.LogPath(n.logName()))
	return string(proctest.Tail(b, 30))
}

// lagWatch samples every node's head every 250 ms and keeps, per node, the
// most it was behind the highest head of the same sample.
type lagWatch struct {
	mu      sync.Mutex
	most    map[string]uint64
	stopped chan struct{}
	done    chan struct{}
}

func watchLag(nodes []*node) *lagWatch {
	w := &lagWatch{most: map[string]uint64{}, stopped: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			heads := map[string]uint64{}
			var top uint64
			for _, n := range nodes {
				if h, err := n.head(); err == nil {
					heads[n.name] = h
					top = max(top, h)
				}
			}
			w.mu.Lock()
			for name, h := range heads {
				w.most[name] = max(w.most[name], top-h)
			}
			w.mu.Unlock()
			select {
			case <-w.stopped:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *lagWatch) stop() map[string]uint64 {
	close(w.stopped)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.most
}

// load sends a transfer through one node every gap until stopped.
type load struct {
	cancel context.CancelFunc
	done   chan struct{}
	sent   []common.Hash
	err    error
}

func startLoad(n *node, key *ecdsa.PrivateKey, gap time.Duration) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		l.err = l.run(ctx, n, key, gap)
	}()
	return l
}

func (l *load) run(ctx context.Context, n *node, key *ecdsa.PrivateKey, gap time.Duration) error {
	ec, err := gethclient.DialContext(ctx, n.geth.RPCURL())
	if err != nil {
		return err
	}
	defer ec.Close()
	chainID, err := ec.ChainID(ctx)
	if err != nil {
		return err
	}
	nonce, err := ec.PendingNonceAt(ctx, ecdsaAddr(key))
	if err != nil {
		return err
	}
	signer := types.LatestSignerForChainID(chainID)
	to := common.HexToAddress("0x00000000000000000000000000000000000c0ffe")
	for ctx.Err() == nil {
		tx, err := types.SignNewTx(key, signer, &types.DynamicFeeTx{
			ChainID: chainID, Nonce: nonce, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9),
			Gas: 21000, To: &to, Value: big.NewInt(1),
		})
		if err != nil {
			return err
		}
		if err := ec.SendTransaction(ctx, tx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("transfer %d: %v", len(l.sent), err)
		}
		l.sent = append(l.sent, tx.Hash())
		nonce++
		select {
		case <-ctx.Done():
		case <-time.After(gap):
		}
	}
	return nil
}

// stop ends the load and returns the transfers sent.
func (l *load) stop() ([]common.Hash, error) {
	l.cancel()
	<-l.done
	return l.sent, l.err
}
