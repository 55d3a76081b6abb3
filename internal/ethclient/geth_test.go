package ethclient

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/testutil"
)

// connectBound is generous: a loopback connection takes milliseconds, but
// the machine may be busy with other packages' tests.
const connectBound = 30 * time.Second

// waitFor polls cond until it holds and returns how long that took; it
// fails the test after bound. An error from cond fails the test at once
// rather than being polled past: "b untrusted and still connected" must
// not pass on a b that dropped and came back.
func waitFor(t *testing.T, bound time.Duration, what string, cond func() (bool, error)) time.Duration {
	t.Helper()
	return testutil.Eventually(t, bound, what, func() error {
		t.Helper()
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !ok {
			return errNotYet
		}
		return nil
	})
}

// errNotYet is what waitFor's poll reports while cond does not hold.
var errNotYet = errors.New("not yet")

func findPeer(ctx context.Context, c Client, id enode.ID) (Peer, bool, error) {
	peers, err := c.Peers(ctx)
	if err != nil {
		return Peer{}, false, err
	}
	for _, p := range peers {
		if p.ID == id {
			return p, true, nil
		}
	}
	return Peer{}, false, nil
}

// TestGeth runs the admin surface against real geth, one release line at a
// time with two nodes each: a is reached over IPC, b over HTTP.
func TestGeth(t *testing.T) {
	for _, version := range []string{gethtest.V117, gethtest.V113} {
		t.Run(version, func(t *testing.T) { testGeth(t, version) })
	}
}

func testGeth(t *testing.T, version string) {
	ctx := context.Background()
	nodeA := gethtest.Start(t, gethtest.Config{Version: version})
	nodeB := gethtest.Start(t, gethtest.Config{Version: version})
	a, err := Dial(ctx, Config{Endpoint: nodeA.IPCPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Dial(ctx, Config{Endpoint: nodeB.RPCURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	t.Run("NodeInfo", func(t *testing.T) {
		info, err := a.NodeInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.ID != nodeA.ID() || info.Node.ID() != nodeA.ID() {
			t.Errorf("ID %s, want %s", info.ID, nodeA.ID())
		}
		if info.Enode != nodeA.Enode() {
			t.Errorf("Enode %s, want %s", info.Enode, nodeA.Enode())
		}
		rec, err := enode.Parse(enode.ValidSchemes, info.ENR)
		if err != nil || rec.ID() != nodeA.ID() {
			t.Errorf("ENR %q: %v, id %v", info.ENR, err, rec)
		}
		if info.IP != "127.0.0.1" || info.ListenerPort != nodeA.P2PPort() || info.DiscoveryPort != nodeA.P2PPort() {
			t.Errorf("endpoint %s tcp %d udp %d, want 127.0.0.1 and %d for both", info.IP, info.ListenerPort, info.DiscoveryPort, nodeA.P2PPort())
		}
		if want := "Geth/" + version; !strings.HasPrefix(info.Name, want) {
			t.Errorf("Name %q, want prefix %q", info.Name, want)
		}
		if !strings.HasPrefix(info.ListenAddr, "127.0.0.1:") {
			t.Errorf("ListenAddr %q is not loopback", info.ListenAddr)
		}
		// gethtest's genesis: Clique with a 2 s period on 1.13, proof of
		// stake on 1.17.
		wantClique, wantPeriod := version == gethtest.V113, time.Duration(0)
		if wantClique {
			wantPeriod = 2 * time.Second
		}
		if info.Clique != wantClique || info.CliquePeriod != wantPeriod {
			t.Errorf("Clique %v period %v, want %v and %v", info.Clique, info.CliquePeriod, wantClique, wantPeriod)
		}
	})

	t.Run("HeadAndSyncing", func(t *testing.T) {
		for _, c := range []Client{a, b} {
			head, err := c.HeadBlock(ctx)
			if err != nil || head != 0 {
				t.Errorf("HeadBlock = %d, %v; want 0 on a fresh chain", head, err)
			}
			syncing, err := c.Syncing(ctx)
			if err != nil || syncing {
				t.Errorf("Syncing = %v, %v; want false", syncing, err)
			}
		}
	})

	t.Run("AddPeer", func(t *testing.T) {
		if peers, err := a.Peers(ctx); err != nil || len(peers) != 0 {
			t.Fatalf("fresh node has peers %v, %v", peers, err)
		}
		if err := a.AddPeer(ctx, nodeB.Node()); err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, connectBound, "b in a's peers", func() (bool, error) {
			_, ok, err := findPeer(ctx, a, nodeB.ID())
			return ok, err
		})
		t.Logf("%s: addPeer to connected: %v", version, took)
		p, _, _ := findPeer(ctx, a, nodeB.ID())
		if !p.Static || p.Inbound || p.Trusted || p.Enode != nodeB.Enode() || !strings.HasPrefix(p.Name, "Geth/") {
			t.Errorf("a sees b as %+v, want static outbound untrusted at %s", p, nodeB.Enode())
		}
		waitFor(t, connectBound, "a in b's peers", func() (bool, error) {
			_, ok, err := findPeer(ctx, b, nodeA.ID())
			return ok, err
		})
		q, _, _ := findPeer(ctx, b, nodeA.ID())
		if !q.Inbound || q.Static || q.RemoteAddr == "" {
			t.Errorf("b sees a as %+v, want inbound, not static", q)
		}
	})

	t.Run("Trusted", func(t *testing.T) {
		trusted := func(want bool) func() (bool, error) {
			return func() (bool, error) {
				p, ok, err := findPeer(ctx, a, nodeB.ID())
				if err == nil && !ok {
					err = errors.New("b disconnected")
				}
				return p.Trusted == want, err
			}
		}
		if err := a.AddTrustedPeer(ctx, nodeB.Node()); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: trusted flag set after %v", version, waitFor(t, 5*time.Second, "b trusted", trusted(true)))
		if err := a.RemoveTrustedPeer(ctx, nodeB.Node()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, "b untrusted and still connected", trusted(false))
	})

	t.Run("RemovePeer", func(t *testing.T) {
		start := time.Now()
		if err := a.RemovePeer(ctx, nodeB.Node()); err != nil {
			t.Fatal(err)
		}
		took := waitFor(t, 5*time.Second, "b gone from a's peers", func() (bool, error) {
			_, ok, err := findPeer(ctx, a, nodeB.ID())
			return !ok, err
		})
		t.Logf("%s: removePeer returned after %v, peer gone %v later", version, time.Since(start)-took, took)
		// a no longer dials b, and b never had a as static.
		time.Sleep(time.Second)
		if _, ok, err := findPeer(ctx, a, nodeB.ID()); ok || err != nil {
			t.Errorf("b came back after RemovePeer (err %v)", err)
		}
	})

	t.Run("Restart", func(t *testing.T) {
		nodeA.Stop()
		_, err := a.NodeInfo(ctx)
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("NodeInfo on a stopped geth: %v, want ErrUnavailable", err)
		}
		if err := nodeA.Restart(); err != nil {
			t.Fatal(err)
		}
		// The same client reconnects over IPC on the next call.
		info, err := a.NodeInfo(ctx)
		if err != nil || info.ID != nodeA.ID() {
			t.Fatalf("NodeInfo after restart: %+v, %v", info, err)
		}
	})
}
