package agent

import (
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/registry"
)

func TestSealGateReady(t *testing.T) {
	own := func(id string, head uint64, peers ...string) registry.NodeView {
		return registry.NodeView{ID: id, Member: "a", Role: "public", Enode: "enode://" + id, Live: true, Status: &registry.Status{Head: head, PeerIDs: peers}}
	}
	foreign := func(id, member string, head uint64) registry.NodeView {
		return registry.NodeView{ID: id, Member: member, Role: "public", PublicEnode: "enode://" + id, Live: true, Status: &registry.Status{Head: head}}
	}
	validator := registry.NodeView{ID: "v", Member: "a", Role: "validator", Enode: "enode://v", Live: true, Status: &registry.Status{Head: 0}}
	cases := []struct {
		name string
		g    sealGate
		want string // "" = ready; else a part of the reason
	}{
		{"no local mesh", sealGate{LocalMesh: false}, "not every peer"},
		{"syncing", sealGate{LocalMesh: true, Syncing: true}, "syncing"},
		{"alone in the consortium", sealGate{LocalMesh: true, Nodes: []registry.NodeView{validator}}, ""},
		{"public peered with all", sealGate{LocalMesh: true, Nodes: []registry.NodeView{validator, own("p", 0, "q", "r"), foreign("q", "b", 0), foreign("r", "c", 0)}}, ""},
		{"public missing one member", sealGate{LocalMesh: true, Nodes: []registry.NodeView{own("p", 0, "q"), foreign("q", "b", 0), foreign("r", "c", 0)}}, "c's public node"},
		{"public without status", sealGate{LocalMesh: true, Nodes: []registry.NodeView{{ID: "p", Role: "public", Enode: "e", Live: true}, foreign("q", "b", 0)}}, "not yet peered"},
		{"lapsed foreign public ignored", sealGate{LocalMesh: true, Nodes: []registry.NodeView{own("p", 0), func() registry.NodeView { n := foreign("q", "b", 0); n.Live = false; return n }()}}, ""},
		{"behind", sealGate{LocalMesh: true, Head: 5, Nodes: []registry.NodeView{own("p", 7, "q"), foreign("q", "b", 9)}}, "behind the best reported head 9"},
		{"at the head", sealGate{LocalMesh: true, Head: 9, Nodes: []registry.NodeView{own("p", 7, "q"), foreign("q", "b", 9)}}, ""},
		{"lapsed node's head ignored", sealGate{LocalMesh: true, Head: 3, Nodes: []registry.NodeView{{ID: "x", Role: "tx", Enode: "e", Status: &registry.Status{Head: 100}}}}, ""},
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
