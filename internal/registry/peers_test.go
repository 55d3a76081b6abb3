package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/noderecord"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// refCompute is the per-node computation the registry did before answers
// were shared per (member, role class): the reference the shared answers
// must match, list for list.
func refCompute(g *groups, index uint64, self enode.ID, member string, role noderecord.Role) *PeerSet {
	ps := &PeerSet{Index: index, Node: self.String(), Static: []string{}, Bootnodes: []string{}, ENRs: []string{}, Consensus: []string{}}
	h := sha256.New()
	if role != noderecord.RoleBootnode {
		add := func(es []entry) {
			for _, e := range es {
				if e.id == self {
					continue
				}
				ps.Static = append(ps.Static, e.enode)
				ps.ENRs = append(ps.ENRs, e.enr)
				if e.cmt != "" {
					ps.Consensus = append(ps.Consensus, e.cmt)
				}
				h.Write([]byte(e.enode))
				h.Write([]byte{' '})
				h.Write([]byte(e.enr))
				h.Write([]byte{'\n'})
			}
		}
		add(g.private[member])
		if role == noderecord.RolePublic {
			for _, m := range g.members {
				if m != member {
					add(g.public[m])
				}
			}
		}
	}
	h.Write([]byte{'|'})
	for _, e := range g.boot[member] {
		if e.id == self {
			continue
		}
		ps.Bootnodes = append(ps.Bootnodes, e.enode)
		h.Write([]byte(e.enode))
		h.Write([]byte{'\n'})
	}
	ps.Trusted = ps.Static
	ps.ETag = `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
	return ps
}

// pop is a population of nodes on one registry, for the peer tests.
type pop struct {
	t     *testing.T
	c     *cluster
	r     *Registry
	nodes map[string]*pnode // by ID
	order []string          // IDs in registration order
}

type pnode struct {
	*tnode
	seq      uint64
	ip, pub  string
	removed  bool
	lastSeen NodeView
}

func newPop(t *testing.T, members ...string) *pop {
	c := newCluster(t, 1, false)
	p := &pop{t: t, c: c, r: c.regs[0], nodes: map[string]*pnode{}}
	for _, m := range members {
		c.addMember(p.r, m)
	}
	return p
}

// add registers a new node of member with role.
func (p *pop) add(member, role string) *pnode {
	p.t.Helper()
	n := &pnode{tnode: newNode(p.t, member, role), seq: 1, ip: fmt.Sprintf("10.0.%d.%d", len(p.order)/250, len(p.order)%250+1)}
	if role == "public" {
		n.pub = fmt.Sprintf("203.0.113.%d", len(p.order)%250+1)
	}
	p.nodes[n.id], p.order = n, append(p.order, n.id)
	p.register(n)
	return n
}

func (p *pop) register(n *pnode) {
	p.t.Helper()
	rg := Registration{Role: n.role, ENR: testutil.ENR(p.t, n.key, n.seq, n.ip, 30303, 30303)}
	if n.pub != "" {
		rg.PublicENR = testutil.ENR(p.t, n.key, n.seq, n.pub, 30303, 30303)
	}
	v, _, err := p.r.Register(context.Background(), Principal{Name: n.member}, rg)
	if err != nil {
		p.t.Fatalf("registering %s %s: %v", n.member, n.role, err)
	}
	n.removed, n.lastSeen = false, v
}

// resign registers n's record again with a higher sequence number, on ip
// (and, for a public node, pub) when they are not empty.
func (p *pop) resign(n *pnode, ip, pub string) {
	p.t.Helper()
	n.seq++
	if ip != "" {
		n.ip = ip
	}
	if pub != "" {
		n.pub = pub
	}
	p.register(n)
}

func (p *pop) answer(n *pnode) *PeerAnswer {
	p.t.Helper()
	a, err := p.r.PeerAnswer(Principal{Name: n.member}, n.id)
	if err != nil {
		p.t.Fatalf("PeerAnswer(%s): %v", n.id[:8], err)
	}
	return a
}

// ref is the reference answer of node id under the registry's current state.
func (p *pop) ref(member string, role string, id enode.ID) *PeerSet {
	p.r.mu.RLock()
	g := p.r.currentGroups()
	p.r.mu.RUnlock()
	return refCompute(g, g.index, id, member, noderecord.Role(role))
}

func TestPeerAnswerLeavesOutTheNode(t *testing.T) {
	p := newPop(t, "a", "b")
	var all []*pnode
	for _, m := range []string{"a", "b"} {
		for _, role := range []string{"bootnode", "bootnode", "validator", "tx", "tx", "public", "public"} {
			all = append(all, p.add(m, role))
		}
	}
	for _, n := range all {
		a := p.answer(n)
		// The node's public key, in its enode URL at either endpoint.
		key := strings.TrimPrefix(n.lastSeen.Enode, "enode://")[:128]
		for _, l := range []List{StaticList, BootnodeList} {
			for _, e := range a.Strings(l) {
				if strings.Contains(e, key) {
					t.Errorf("%s %s: its own entry %s is in its answer", n.member, n.role, e)
				}
			}
		}
		if want := p.ref(n.member, n.role, enode.HexID(n.id)); len(a.Strings(StaticList)) != len(want.Static) {
			t.Errorf("%s %s: %d static peers, want %d", n.member, n.role, len(a.Strings(StaticList)), len(want.Static))
		}
		if a.Node != n.id {
			t.Errorf("answer's node %s, want %s", a.Node, n.id)
		}
	}
}

func TestPeerAnswerETagPerNode(t *testing.T) {
	p := newPop(t, "a")
	b1, b2 := p.add("a", "bootnode"), p.add("a", "bootnode")
	t1, t2, v := p.add("a", "tx"), p.add("a", "tx"), p.add("a", "validator")
	seen := map[string]string{}
	for _, n := range []*pnode{b1, b2, t1, t2, v} {
		e := p.answer(n).ETag
		if other, ok := seen[e]; ok {
			t.Errorf("%s and %s share the ETag %s", other, n.id[:8], e)
		}
		seen[e] = n.id[:8]
	}
	// Two tx nodes of one group share the group's digest, not the tag.
	if p.answer(t1).ga != p.answer(t2).ga {
		t.Error("two tx nodes of one member do not share their group's answer")
	}
}

func TestPeerAnswerETagFollowsTheAnswer(t *testing.T) {
	p := newPop(t, "a", "b")
	p.add("a", "bootnode")
	val, tx, pub := p.add("a", "validator"), p.add("a", "tx"), p.add("a", "public")
	bpub := p.add("b", "public")
	p.add("b", "tx")

	type tags map[*pnode]string
	snap := func() tags {
		return tags{val: p.answer(val).ETag, tx: p.answer(tx).ETag, pub: p.answer(pub).ETag}
	}
	for _, step := range []struct {
		name    string
		do      func()
		changed []*pnode // whose answer changes; the others' must not
		// self is the node whose own record changes: its answer does not,
		// but its tag may (it hashes its group's digest, which covers it).
		self *pnode
	}{
		{"a peer re-signs its record", func() { p.resign(tx, "", "") }, []*pnode{val, pub}, tx},
		{"a bootnode joins", func() { p.add("a", "bootnode") }, []*pnode{val, tx, pub}, nil},
		{"another member's public node moves", func() { p.resign(bpub, "", "203.0.113.200") }, []*pnode{pub}, nil},
		{"another member's tx node registers", func() { p.add("b", "tx") }, nil, nil},
		{"another member's tx node re-signs", func() { p.resign(p.nodes[p.order[len(p.order)-1]], "10.9.9.9", "") }, nil, nil},
		{"a validator moves", func() { p.resign(val, "10.7.7.7", "") }, []*pnode{tx, pub}, val},
		{"another member's public node is removed", func() {
			if err := p.r.Remove(context.Background(), Principal{Name: "b"}, bpub.id); err != nil {
				t.Fatal(err)
			}
		}, []*pnode{pub}, nil},
	} {
		before, index := snap(), p.r.Index()
		step.do()
		if p.r.Index() == index && step.changed != nil {
			t.Fatalf("%s: the index did not move", step.name)
		}
		after := snap()
		for n, tag := range before {
			want := slices.Contains(step.changed, n)
			if got := after[n] != tag; got != want && !(got && step.self == n) {
				t.Errorf("%s: the %s node's ETag changed = %v, want %v", step.name, n.role, got, want)
			}
		}
	}
}

// TestPeerAnswersMatchReference checks, on random populations under random
// changes, that every node's shared answer is list for list the reference
// computation's, that its renderings are the lists', and that the ETag
// moves whenever the reference answer does.
func TestPeerAnswersMatchReference(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { checkAgainstReference(t, seed) })
	}
}

func checkAgainstReference(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 1))
	members := []string{"m0", "m1", "m2", "m3"}
	roles := []string{"bootnode", "validator", "tx", "tx", "public"}
	p := newPop(t, members...)
	for range 24 + rng.IntN(16) {
		p.add(members[rng.IntN(len(members))], roles[rng.IntN(len(roles))])
	}
	prevRef, prevTag := map[string]string{}, map[string]string{}
	for round := range 12 {
		checkState(t, p, prevRef, prevTag)
		// One random change, as agents and operators make them.
		live := p.liveNodes()
		switch op := rng.IntN(6); {
		case round == 6:
			// A member is revoked: its nodes leave every answer, and it
			// registers no more (Register refuses it).
			i := rng.IntN(len(members))
			if _, err := p.r.RevokeMember(context.Background(), admin, members[i]); err != nil {
				t.Fatal(err)
			}
			members = slices.Delete(slices.Clone(members), i, i+1)
		case op == 0 || len(live) == 0:
			p.add(members[rng.IntN(len(members))], roles[rng.IntN(len(roles))])
		case op == 1:
			n := live[rng.IntN(len(live))]
			p.resign(n, "", "") // same endpoints, new record
		case op == 2:
			n := live[rng.IntN(len(live))]
			pub := ""
			if n.pub != "" {
				pub = fmt.Sprintf("203.0.113.%d", 200+round)
			}
			p.resign(n, fmt.Sprintf("10.1.%d.%d", round, rng.IntN(250)+1), pub)
		case op == 3:
			n := live[rng.IntN(len(live))]
			if err := p.r.Remove(context.Background(), Principal{Name: n.member}, n.id); err != nil {
				t.Fatal(err)
			}
			n.removed = true
		case op == 4:
			// Some leases run out: the others renew in time.
			p.c.clock.Advance(time.Second)
			for _, n := range p.liveNodes() {
				if rng.IntN(4) != 0 {
					if _, err := p.r.Renew(context.Background(), Principal{Name: n.member}, n.id, nil); err != nil {
						t.Fatal(err)
					}
				}
			}
			p.c.clock.Advance(sharedTTL - time.Millisecond)
			p.r.Reap()
		default:
			p.add(members[rng.IntN(len(members))], "bootnode")
		}
	}
	checkState(t, p, prevRef, prevTag)
}

func (p *pop) isRevoked(member string) bool {
	p.r.mu.RLock()
	defer p.r.mu.RUnlock()
	return p.r.revoked(member)
}

func (p *pop) liveNodes() []*pnode {
	var out []*pnode
	for _, id := range p.order {
		n := p.nodes[id]
		if v, err := p.r.Node(admin, id); err == nil && v.Live && !n.removed {
			out = append(out, n)
		}
	}
	return out
}

// testEnc renders a list so that its elements and separators are visible.
var testEnc = &Encoding{Sep: "<>", Append: func(dst []byte, s string) []byte { return append(append(append(dst, '['), s...), ']') }}

func renderRef(list []string) string {
	var b []byte
	for i, s := range list {
		if i > 0 {
			b = append(b, testEnc.Sep...)
		}
		b = testEnc.Append(b, s)
	}
	return string(b)
}

// checkState compares every node's answer (lapsed and removed ones too: an
// agent may still ask) and every role's with the reference, and the ETags
// with the previous state's.
func checkState(t *testing.T, p *pop, prevRef, prevTag map[string]string) {
	t.Helper()
	tags := map[string]string{}
	check := func(name string, a *PeerAnswer, want *PeerSet) {
		t.Helper()
		got := a.Set()
		if got.Index != want.Index || got.Node != want.Node ||
			!slices.Equal(got.Static, want.Static) || !slices.Equal(got.Trusted, want.Trusted) ||
			!slices.Equal(got.ENRs, want.ENRs) || !slices.Equal(got.Bootnodes, want.Bootnodes) ||
			!slices.Equal(got.Consensus, want.Consensus) {
			t.Fatalf("%s: answer\n%+v\nwant\n%+v", name, got, want)
		}
		for l, list := range map[List][]string{StaticList: want.Static, ENRList: want.ENRs, BootnodeList: want.Bootnodes, ConsensusList: want.Consensus} {
			h, tl := a.Joined(l, testEnc)
			if g := string(h) + string(tl); g != renderRef(list) {
				t.Fatalf("%s: list %d rendered %q, want %q", name, l, g, renderRef(list))
			}
			if a.Len(l) != len(list) {
				t.Fatalf("%s: list %d has length %d, want %d", name, l, a.Len(l), len(list))
			}
		}
		// Equal tags mean equal answers (a role's set, which names no
		// node, is the same for validator and tx).
		lists := fmt.Sprint(want.Static, want.ENRs, want.Bootnodes)
		if other, ok := tags[a.ETag]; ok && other != lists {
			t.Fatalf("%s shares the ETag %s with a different answer", name, a.ETag)
		}
		tags[a.ETag] = lists
		if old, ok := prevRef[name]; ok && old != want.ETag && prevTag[name] == a.ETag {
			t.Fatalf("%s: the answer changed but its ETag %s did not", name, a.ETag)
		}
		prevRef[name], prevTag[name] = want.ETag, a.ETag
	}
	for _, id := range p.order {
		n := p.nodes[id]
		asker := Principal{Name: n.member}
		if p.isRevoked(n.member) {
			// Its member's own queries end with ErrRevoked; the
			// administrator may still ask.
			if _, err := p.r.PeerAnswer(asker, id); !errors.Is(err, ErrRevoked) {
				t.Fatalf("PeerAnswer(%s) of a revoked member: %v", id[:8], err)
			}
			asker = admin
		}
		a, err := p.r.PeerAnswer(asker, id)
		if err != nil {
			t.Fatalf("PeerAnswer(%s): %v", id[:8], err)
		}
		check(n.member+"/"+n.role+"/"+id[:8], a, p.ref(n.member, n.role, enode.HexID(id)))
	}
	for _, m := range []string{"m0", "m1", "m2", "m3"} {
		for _, role := range []string{"bootnode", "validator", "tx", "public"} {
			a, err := p.r.RoleAnswer(Principal{Name: m}, role)
			if p.isRevoked(m) {
				if !errors.Is(err, ErrRevoked) {
					t.Fatalf("RoleAnswer of revoked %s: %v", m, err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			check(m+"/"+role+"/new", a, p.ref(m, role, enode.ID{}))
		}
	}
}
