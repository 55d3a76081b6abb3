package agent

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

func TestSealGateReady(t *testing.T) {
	own := func(id string, head uint64, peers ...string) api.NodeView {
		return api.NodeView{ID: id, Member: "a", Role: "public", Enode: "enode://" + id, Live: true, Status: &api.Status{Head: head, PeerIDs: peers}}
	}
	foreign := func(id, member string, head uint64) api.NodeView {
		return api.NodeView{ID: id, Member: member, Role: "public", PublicEnode: "enode://" + id, Live: true, Status: &api.Status{Head: head}}
	}
	validator := api.NodeView{ID: "v", Member: "a", Role: "validator", Enode: "enode://v", Live: true, Status: &api.Status{Head: 0}}
	cases := []struct {
		name string
		g    sealGate
		want string // "" = ready; else a part of the reason
	}{
		{"no local mesh", sealGate{LocalMesh: false}, "not every peer"},
		{"syncing", sealGate{LocalMesh: true, Syncing: true}, "syncing"},
		{"alone in the consortium", sealGate{LocalMesh: true, Nodes: []api.NodeView{validator}}, ""},
		{"public peered with all", sealGate{LocalMesh: true, Nodes: []api.NodeView{validator, own("p", 0, "q", "r"), foreign("q", "b", 0), foreign("r", "c", 0)}}, ""},
		{"public missing one member", sealGate{LocalMesh: true, Nodes: []api.NodeView{own("p", 0, "q"), foreign("q", "b", 0), foreign("r", "c", 0)}}, "c's public node"},
		{"public without status", sealGate{LocalMesh: true, Nodes: []api.NodeView{{ID: "p", Role: "public", Enode: "e", Live: true}, foreign("q", "b", 0)}}, "not yet peered"},
		{"lapsed foreign public ignored", sealGate{LocalMesh: true, Nodes: []api.NodeView{own("p", 0), func() api.NodeView { n := foreign("q", "b", 0); n.Live = false; return n }()}}, ""},
		{"behind", sealGate{LocalMesh: true, Head: 5, Nodes: []api.NodeView{own("p", 7, "q"), foreign("q", "b", 9)}}, "behind the best reported head 9"},
		{"at the head", sealGate{LocalMesh: true, Head: 9, Nodes: []api.NodeView{own("p", 7, "q"), foreign("q", "b", 9)}}, ""},
		{"lapsed node's head ignored", sealGate{LocalMesh: true, Head: 3, Nodes: []api.NodeView{{ID: "x", Role: "tx", Enode: "e", Status: &api.Status{Head: 100}}}}, ""},
	}
	for _, c := range cases {
		ok, why := c.g.ready()
		if c.want == "" {
			if !ok {
				t.Errorf("%s: not ready (%s), want ready", c.name, why)
			}
			continue
		}
		if ok || !strings.Contains(why, c.want) {
			t.Errorf("%s: ready=%v why=%q, want closed with %q", c.name, ok, why, c.want)
		}
	}
}

func TestAheadPeer(t *testing.T) {
	mk := func(seed byte) *enode.Node {
		k, err := crypto.ToECDSA(append(make([]byte, 31), seed))
		if err != nil {
			t.Fatal(err)
		}
		return enode.NewV4(&k.PublicKey, net.IPv4(10, 0, 0, seed), 30303, 30303)
	}
	p1, p2, other := mk(1), mk(2), mk(3)
	want := map[enode.ID]*enode.Node{p1.ID(): p1, p2.ID(): p2}
	view := func(n *enode.Node, head uint64, live bool) api.NodeView {
		return api.NodeView{ID: n.ID().String(), Live: live, Status: &api.Status{Head: head}}
	}
	cases := []struct {
		name string
		view []api.NodeView
		head uint64
		want *enode.Node
	}{
		{"nobody ahead", []api.NodeView{view(p1, 27, true), view(p2, 20, true)}, 27, nil},
		{"the highest of the set", []api.NodeView{view(p1, 28, true), view(p2, 29, true)}, 27, p2},
		{"a node outside the set is ignored", []api.NodeView{view(other, 90, true), view(p1, 28, true)}, 27, p1},
		{"a lapsed node is ignored", []api.NodeView{view(p2, 90, false)}, 27, nil},
		{"no status", []api.NodeView{{ID: p1.ID().String(), Live: true}}, 27, nil},
	}
	for _, c := range cases {
		got, _ := aheadPeer(c.view, want, c.head)
		if got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

// noMinerClient is a client without the miner API (geth 1.14+, proof of
// stake): every miner call is ErrMethodNotFound.
type noMinerClient struct{ fakeClient }

func (*noMinerClient) SetEtherbase(context.Context, common.Address) error { return notFound() }
func (*noMinerClient) StartMining(context.Context) error                  { return notFound() }
func (*noMinerClient) StopMining(context.Context) error                   { return notFound() }
func (*noMinerClient) Mining(context.Context) (bool, error)               { return false, notFound() }
func (*noMinerClient) CanSign(context.Context, common.Address) bool       { return false }

func notFound() error {
	return &ethclient.Error{Method: "miner_stop", Kind: ethclient.ErrMethodNotFound, Message: "the method miner_stop does not exist"}
}

// TestSealWithoutMinerAPIGivesUp: --seal on a client without the miner API
// is logged once and then left alone, not retried every SealCheck.
func TestSealWithoutMinerAPIGivesUp(t *testing.T) {
	fc := &noMinerClient{fakeClient: fakeClient{connected: map[enode.ID]*enode.Node{}}}
	k, _ := crypto.GenerateKey()
	rc, _ := registrarclient.New(registrarclient.Config{})
	a, err := New(Config{Client: fc, Registrar: rc, Key: k, Role: "validator", StateDir: t.TempDir(),
		Seal: common.HexToAddress("0x00000000000000000000000000000000000000c1"), SealAnyway: time.Nanosecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a.seal.since = time.Now().Add(-time.Minute) // the gate is past SealAnyway: it tries to start
	if again := a.sealStep(context.Background(), false); again != 0 || !a.seal.noMiner {
		t.Fatalf("sealStep = %v, noMiner %v; want 0 and true", again, a.seal.noMiner)
	}
	if again := a.sealStep(context.Background(), false); again != 0 {
		t.Fatalf("second sealStep = %v, want 0 (given up)", again)
	}
}
