package agent_test

import (
	"context"
	"net"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// peerWatch follows one geth's admin_peerEvents from the test's side, so
// the time a peer stayed is read off geth's own add and drop events.
type peerWatch struct {
	ch  chan ethclient.PeerEvent
	sub ethclient.Subscription
}

func watchPeers(t *testing.T, n *tnode) *peerWatch {
	t.Helper()
	c, err := ethclient.Dial(context.Background(), ethclient.Config{Endpoint: n.geth.IPCPath()})
	if err != nil {
		t.Fatal(err)
	}
	w := &peerWatch{ch: make(chan ethclient.PeerEvent, 256)}
	if w.sub, err = c.SubscribePeerEvents(context.Background(), w.ch); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.sub.Unsubscribe(); c.Close() })
	return w
}

// next waits for an event of type typ about id and returns when it came.
func (w *peerWatch) next(t *testing.T, typ string, id enode.ID, within time.Duration) (time.Time, bool) {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case ev := <-w.ch:
			if ev.Type == typ && ev.Peer == id {
				return time.Now(), true
			}
		case err := <-w.sub.Err():
			t.Fatalf("peer events ended: %v", err)
		case <-deadline:
			return time.Time{}, false
		}
	}
}

// TestForeignGethGetsNoChain is issue 18's item 11: a geth that is no
// member's node, given the consortium's genesis, dials a member's public
// node again and again. Each time the agent must disconnect it within
// 100 ms of the connection (read from geth's own peer events), and the
// stranger must not get the chain: its head stays at the genesis (it got
// 682 blocks in the 2 s the agent used to allow).
//
// Each dial is a fresh start of the foreign geth: geth keeps a node it
// dialled in its dial history for 35 s, and RPC-added peers do not survive
// a restart. CONSORTIUM_TEST_FOREIGN_DIALS sets the number (default 20).
func TestForeignGethGetsNoChain(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real geth processes")
	}
	dials := 20
	if v, err := strconv.Atoi(os.Getenv("CONSORTIUM_TEST_FOREIGN_DIALS")); err == nil && v > 0 {
		dials = v
	}
	s := newSuiteTTL(t, gethtest.V113, time.Minute)
	alpha := s.addMember("alpha")
	_, signer, unlock := signerKeystore(t)
	genesis := cliqueGenesis(t, signer) // a block a second
	sig := s.startNodeWith(alpha, "alpha-validator", "validator", gethtest.Config{Genesis: genesis,
		ExtraArgs: append(unlock, "--mine", "--miner.etherbase", signer.Hex()),
	}, func(c *agent.Config) { c.StallAfter = -1 })
	relayDir := t.TempDir()
	relay, err := agent.RelayAccount(relayDir)
	if err != nil {
		t.Fatal(err)
	}
	pub := s.startNodeWith(alpha, "alpha-public", "public", gethtest.Config{Genesis: genesis,
		ExtraArgs: []string{"--keystore", relayDir},
	}, func(c *agent.Config) { c.Relay = relay })
	s.waitMesh([]*tnode{sig, pub}, 60*time.Second)
	const chain = 20
	testutil.EventuallyTrue(t, 90*time.Second, "the public node has the chain", func() bool { return head(t, pub) >= chain })

	events := watchPeers(t, pub)
	f := gethtest.Start(t, gethtest.Config{Version: gethtest.V113, Genesis: genesis, ExtraArgs: []string{"--syncmode", "full"}})
	// The stranger dials the public endpoint, the forwarder that stands for
	// the member's NAT, as one on the internet would.
	public := enode.NewV4(pub.geth.Node().Pubkey(), net.ParseIP("127.0.0.1"), pub.pubPort, pub.pubPort).URLv4()
	var stays []time.Duration
	for i := 0; i < dials; i++ {
		if i > 0 {
			f.Stop()
			if err := f.Restart(); err != nil {
				t.Fatal(err)
			}
		}
		if err := f.Call(nil, "admin_addPeer", public); err != nil {
			t.Fatal(err)
		}
		added, ok := events.next(t, "add", f.ID(), 15*time.Second)
		if !ok {
			t.Fatalf("dial %d: the foreign node never connected (the test proves nothing without it)", i+1)
		}
		dropped, ok := events.next(t, "drop", f.ID(), 5*time.Second)
		if !ok {
			t.Fatalf("dial %d: the foreign node stays connected", i+1)
		}
		stays = append(stays, dropped.Sub(added))
	}
	var fhx hexutil.Uint64
	if err := f.Call(&fhx, "eth_blockNumber"); err != nil {
		t.Fatal(err)
	}
	fh := uint64(fhx)
	ph := head(t, pub)
	slices.Sort(stays)
	t.Logf("%d dials of a foreign geth 1.13: connected for min %v, median %v, max %v (admin_peerEvents add to drop); its head %d, the chain's %d",
		dials, stays[0], stays[len(stays)/2], stays[len(stays)-1], fh, ph)
	// The bar is 100 ms every time, and the figure (docs/benchmarks.md) is
	// a few ms. A test on a shared CI machine bounds it generously: the
	// median under the bar, every stay under a second, and no blocks.
	if stays[len(stays)/2] > 100*time.Millisecond || stays[len(stays)-1] > time.Second {
		t.Errorf("the foreign node stayed connected too long: median %v, max %v: %v", stays[len(stays)/2], stays[len(stays)-1], stays)
	}
	if fh > 0 {
		t.Errorf("the foreign node got blocks: head %d of %d", fh, ph)
	}
	if d := s.meshDiff([]*tnode{sig, pub}); d != "" {
		t.Errorf("mesh damaged: %s", d)
	}
}
