// Package load is the registrar benchmark's load generator, shared by the
// in-process benchmarks of internal/bench and the HA benchmark of
// internal/hatest (both live in _test files, which cannot import each
// other): the population of pre-signed nodes, the HTTP requests an agent
// makes (built by hand, bodies read to the end but not decoded, so the
// client does not compete with the registrar for the CPU), the watcher
// rounds and the figures taken from them. It is imported only by tests.
package load

import (
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
)

// The population: 10,000 nodes in 10 members, laid out so that
//   - one public node of m00 (7,000 nodes) sees ~8,000 peers: m00's 6,997
//     other non-bootnodes by private endpoint plus the 1,000 public nodes of
//     the other nine members by public endpoint (internal/registry/peers.go);
//   - m01 has exactly 1,000 non-bootnodes: the 1,000 watchers. A node joining
//     m01 changes every one of their peer sets (each holds ~1,000 peers).
const (
	TotalNodes  = 10000
	BigMember   = "m00"
	WatchMember = "m01"
	FreshMember = "fresh" // new registrations land here, outside every measured peer set
	FreshNodes  = 3000
	ChangeNodes = 4 // m01 tx nodes registered to trigger watcher rounds
	ChangeBoots = 2 // m01 bootnodes registered to trigger watcher rounds
	Watchers    = 1000
)

// memberLayout is (name, size, bootnodes, validators, public); the rest are tx nodes.
var memberLayout = []struct {
	name                    string
	size, boot, valid, publ int
}{
	{"m00", 7000, 2, 3, 100},
	{"m01", 1002, 2, 4, 16},
	{"m02", 250, 2, 1, 123},
	{"m03", 250, 2, 1, 123},
	{"m04", 250, 2, 1, 123},
	{"m05", 250, 2, 1, 123},
	{"m06", 250, 2, 1, 123},
	{"m07", 250, 2, 1, 123},
	{"m08", 249, 2, 1, 123},
	{"m09", 249, 2, 1, 123},
}

// Spec is one pre-signed node: its member, role, ID and registration body.
type Spec struct {
	Member, Role, ID string
	Body             []byte // the POST /v1/nodes body
}

// Population is every node the benchmarks register, keys generated and
// records signed ahead, so that signing never competes with the registrar.
type Population struct {
	Nodes    []Spec // the 10,000 setup nodes
	Target   int    // index in Nodes of the ~8,000-peer node
	Watchers []int  // indices in Nodes of the 1,000 watchers
	Fresh    []Spec // new registrations (FreshMember)
	Changes  []Spec // m01 tx nodes, one per watcher round
	Boots    []Spec // m01 bootnodes, one per watcher round
	Members  []string
	GenTime  time.Duration
}

// WatcherSpecs is the 1,000 watchers' specs.
func (p *Population) WatcherSpecs() []Spec {
	ws := make([]Spec, 0, len(p.Watchers))
	for _, i := range p.Watchers {
		ws = append(ws, p.Nodes[i])
	}
	return ws
}

type want struct {
	member, role string
	mi, i        int // member index, index inside the member (for endpoints)
}

// Generate makes every key and signed record of the population, in
// parallel on all cores.
func Generate() (*Population, error) {
	start := time.Now()
	p := &Population{Target: -1}
	var ws []want
	for mi, m := range memberLayout {
		p.Members = append(p.Members, m.name)
		for i := range m.size {
			role := "tx"
			switch {
			case i < m.boot:
				role = "bootnode"
			case i < m.boot+m.valid:
				role = "validator"
			case i < m.boot+m.valid+m.publ:
				role = "public"
			}
			if m.name == BigMember && role == "public" && p.Target < 0 {
				p.Target = len(ws)
			}
			if m.name == WatchMember && role != "bootnode" {
				p.Watchers = append(p.Watchers, len(ws))
			}
			ws = append(ws, want{m.name, role, mi, i})
		}
	}
	if len(ws) != TotalNodes || len(p.Watchers) != Watchers {
		return nil, fmt.Errorf("layout: %d nodes, %d watchers", len(ws), len(p.Watchers))
	}
	p.Members = append(p.Members, FreshMember)
	for i := range FreshNodes {
		ws = append(ws, want{FreshMember, "tx", len(memberLayout), i})
	}
	for i := range ChangeNodes {
		ws = append(ws, want{WatchMember, "tx", 1, 2000 + i})
	}
	for i := range ChangeBoots {
		ws = append(ws, want{WatchMember, "bootnode", 1, 2100 + i})
	}
	all := make([]Spec, len(ws))
	_, _, err := RunConcurrent(runtime.GOMAXPROCS(0), len(ws), func(k int) error {
		s, err := makeSpec(ws[k])
		all[k] = s
		return err
	})
	if err != nil {
		return nil, err
	}
	p.Nodes = all[:TotalNodes]
	p.Fresh = all[TotalNodes : TotalNodes+FreshNodes]
	p.Changes = all[TotalNodes+FreshNodes : TotalNodes+FreshNodes+ChangeNodes]
	p.Boots = all[TotalNodes+FreshNodes+ChangeNodes:]
	p.GenTime = time.Since(start)
	return p, nil
}

func makeSpec(w want) (Spec, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return Spec{}, err
	}
	// Private endpoint 10.<member>.<hi>.<lo>; public endpoint in 198.18.0.0/15.
	priv := net.IPv4(10, byte(w.mi), byte(w.i/250), byte(w.i%250+1))
	text, id, err := signENR(key, priv)
	if err != nil {
		return Spec{}, err
	}
	req := api.RegisterRequest{ENR: text, Role: w.role}
	if w.role == "public" {
		pub := net.IPv4(198, 18, byte(w.mi), byte(w.i%250+1))
		if req.PublicENR, _, err = signENR(key, pub); err != nil {
			return Spec{}, err
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Spec{}, err
	}
	return Spec{Member: w.member, Role: w.role, ID: id, Body: body}, nil
}

// signENR signs a record for key at ip (TCP and UDP 30303) and returns its
// text and node ID.
func signENR(key *ecdsa.PrivateKey, ip net.IP) (string, string, error) {
	var r enr.Record
	r.SetSeq(1)
	r.Set(enr.IP(ip))
	r.Set(enr.TCP(30303))
	r.Set(enr.UDP(30303))
	if err := enode.SignV4(&r, key); err != nil {
		return "", "", err
	}
	n, err := enode.New(enode.ValidSchemes, &r)
	if err != nil {
		return "", "", err
	}
	return n.String(), n.ID().String(), nil
}
