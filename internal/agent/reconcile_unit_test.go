package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// fakeClient stands in for geth in these pure-logic tests only; the real
// behaviour is tested against real geth in geth_test.go.
type fakeClient struct {
	mu        sync.Mutex
	connected map[enode.ID]*enode.Node
	inbound   map[enode.ID]bool // connections the peer opened
	calls     []string
}

func (f *fakeClient) NodeInfo(context.Context) (ethclient.NodeInfo, error) {
	return ethclient.NodeInfo{}, nil
}
func (f *fakeClient) Peers(context.Context) ([]ethclient.Peer, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ethclient.Peer
	for id, n := range f.connected {
		out = append(out, ethclient.Peer{ID: id, Node: n, Trusted: true, Inbound: f.inbound[id]})
	}
	return out, nil
}
func (f *fakeClient) log(op string, n *enode.Node) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, op+" "+n.URLv4())
	if op == "remove" {
		delete(f.connected, n.ID())
	}
	return nil
}
func (f *fakeClient) AddPeer(_ context.Context, n *enode.Node) error    { return f.log("add", n) }
func (f *fakeClient) RemovePeer(_ context.Context, n *enode.Node) error { return f.log("remove", n) }
func (f *fakeClient) AddTrustedPeer(_ context.Context, n *enode.Node) error {
	return f.log("trust", n)
}
func (f *fakeClient) RemoveTrustedPeer(_ context.Context, n *enode.Node) error {
	return f.log("untrust", n)
}
func (f *fakeClient) HeadBlock(context.Context) (uint64, error) { return 0, nil }
func (f *fakeClient) Syncing(context.Context) (bool, error)     { return false, nil }
func (f *fakeClient) Close()                                    {}

func (f *fakeClient) took() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func peerAt(t *testing.T, key []byte, port int) *enode.Node {
	k, err := crypto.ToECDSA(key)
	if err != nil {
		t.Fatal(err)
	}
	return enode.NewV4(&k.PublicKey, net.ParseIP("127.0.0.1"), port, port)
}

func newUnitAgent(t *testing.T, fc *fakeClient, cfg Config) *Agent {
	k, _ := crypto.GenerateKey()
	rc, _ := registrarclient.New(registrarclient.Config{})
	cfg.Client, cfg.Registrar, cfg.Key, cfg.Role, cfg.StateDir = fc, rc, k, "tx", t.TempDir()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func contains(calls []string, op string, n *enode.Node) bool {
	for _, c := range calls {
		if c == op+" "+n.URLv4() {
			return true
		}
	}
	return false
}

// A peer that leaves the set is removed only after DepartGrace.
func TestDepartedPeerKeptForGrace(t *testing.T) {
	p1 := peerAt(t, bytesOf(1), 30301)
	p2 := peerAt(t, bytesOf(2), 30302)
	fc := &fakeClient{connected: map[enode.ID]*enode.Node{p1.ID(): p1, p2.ID(): p2}}
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	a := newUnitAgent(t, fc, Config{DepartGrace: 300 * time.Millisecond, Now: clock.now})
	a.desired, a.applied, a.haveSet = []*enode.Node{p1, p2}, []*enode.Node{p1, p2}, true
	ctx := context.Background()
	a.reconcile(ctx)
	fc.took()

	a.desired = []*enode.Node{p1}
	_, recheck := a.reconcile(ctx)
	if calls := fc.took(); contains(calls, "remove", p2) {
		t.Fatalf("departed peer removed at once: %v", calls)
	}
	if recheck <= 0 || recheck > 300*time.Millisecond {
		t.Fatalf("recheck %v", recheck)
	}
	clock.t = clock.t.Add(300 * time.Millisecond)
	a.reconcile(ctx)
	if calls := fc.took(); !contains(calls, "remove", p2) || !contains(calls, "untrust", p2) {
		t.Fatalf("departed peer not removed after the grace: %v", calls)
	}
	// Coming back within the grace cancels the removal.
	a.desired, a.applied = []*enode.Node{p1, p2}, []*enode.Node{p1, p2}
	fc.connected[p2.ID()] = p2
	a.reconcile(ctx)
	a.desired = []*enode.Node{p1}
	a.reconcile(ctx)
	a.desired = []*enode.Node{p1, p2}
	a.reconcile(ctx)
	clock.t = clock.t.Add(300 * time.Millisecond)
	a.reconcile(ctx)
	if calls := fc.took(); contains(calls, "remove", p2) {
		t.Fatalf("a peer back within the grace was removed: %v", calls)
	}
}

// A moved peer that is connected is not cut; its endpoint is updated once it
// disconnects.
func TestMovedPeerKeptWhileConnected(t *testing.T) {
	old := peerAt(t, bytesOf(3), 30303)
	moved := peerAt(t, bytesOf(3), 31313)
	fc := &fakeClient{connected: map[enode.ID]*enode.Node{old.ID(): moved}}
	a := newUnitAgent(t, fc, Config{DialStagger: time.Nanosecond})
	a.desired, a.applied, a.haveSet = []*enode.Node{moved}, []*enode.Node{old}, true
	ctx := context.Background()
	a.reconcile(ctx)
	if calls := fc.took(); contains(calls, "remove", old) {
		t.Fatalf("connected moved peer was cut: %v", calls)
	}
	delete(fc.connected, old.ID())
	a.reconcile(ctx)
	calls := fc.took()
	if !contains(calls, "remove", old) || !contains(calls, "add", moved) {
		t.Fatalf("moved peer's endpoint not updated after it disconnected: %v", calls)
	}
}

func bytesOf(b byte) []byte {
	k := make([]byte, 32)
	k[31] = b
	return k
}

// The lease the registrar grants bounds the departure grace: with a 4 s
// lease a departed peer goes after 2 s, not after DepartGrace (10 s), so a
// node taken out of the set is out of every peer set within one lease.
func TestDepartureGraceWithinTheLease(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(map[string]any{"id": "x", "ttl_seconds": 4})
	}))
	defer srv.Close()
	p1 := peerAt(t, bytesOf(1), 30301)
	p2 := peerAt(t, bytesOf(2), 30302)
	fc := &fakeClient{connected: map[enode.ID]*enode.Node{p1.ID(): p1, p2.ID(): p2}}
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	a := newUnitAgent(t, fc, Config{DepartGrace: 10 * time.Second, Now: clock.now})
	rc, err := registrarclient.New(registrarclient.Config{URL: srv.URL, Credential: "m.x"})
	if err != nil {
		t.Fatal(err)
	}
	a.cfg.Registrar = rc
	ctx := context.Background()
	if err := a.register(ctx, ethclient.NodeInfo{ID: a.nodeID(), IP: "127.0.0.1", ListenerPort: 30300, DiscoveryPort: 30300}); err != nil {
		t.Fatal(err)
	}
	a.desired, a.applied, a.haveSet = []*enode.Node{p1, p2}, []*enode.Node{p1, p2}, true
	a.reconcile(ctx)
	fc.took()

	a.desired = []*enode.Node{p1}
	if _, recheck := a.reconcile(ctx); recheck != 2*time.Second {
		t.Fatalf("recheck %v after a departure under a 4 s lease, want 2 s", recheck)
	}
	clock.t = clock.t.Add(2*time.Second - time.Nanosecond)
	a.reconcile(ctx)
	if calls := fc.took(); contains(calls, "remove", p2) {
		t.Fatalf("departed peer removed before half the lease: %v", calls)
	}
	clock.t = clock.t.Add(time.Nanosecond)
	a.reconcile(ctx)
	if calls := fc.took(); !contains(calls, "remove", p2) {
		t.Fatalf("departed peer kept past half the lease: %v", calls)
	}
}
