package registry

import (
	"crypto/sha256"
	"fmt"
	"sort"
	"sync"

	"github.com/consortium/consortium/internal/noderecord"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// The peering policy (docs/api.md, "Peer policy"):
//   - a node of member M peers with every live validator, tx and public node
//     of M, by private endpoint;
//   - a public node of M also peers with every live public node of every
//     other non-revoked member, by public endpoint;
//   - every node of M gets M's live bootnodes as its bootnodes;
//   - a bootnode gets no devp2p peers (it only speaks discovery).
// Nothing else crosses a member boundary.
//
// So every node of one member and one role class (validator and tx alike;
// public; bootnode) is offered the same lists, less its own entry. The
// registry computes those lists, their digest and their renderings once per
// (member, class) and index (groupAnswer), and a node's answer (PeerAnswer)
// is the group's with one position left out: a change that wakes a thousand
// watchers of one member costs one computation, not a thousand.

// A node's answer in its wire form, as clients decode it, is PeerSet
// (api.PeerSet); the registry's own, shared form is PeerAnswer, and
// PeerAnswer.Set builds a PeerSet from it.

type entry struct {
	id    enode.ID
	enode string
	enr   string
	cmt   string // the record's CometBFT address, "" without a "cmt" entry
}

// groups are the building blocks of every answer at one index. Everything
// but the answers cache is read-only once built.
type groups struct {
	index   uint64
	private map[string][]entry // member -> live non-bootnode nodes, private endpoints
	boot    map[string][]entry // member -> live bootnodes
	public  map[string][]entry // member -> live public nodes, public endpoints
	members []string           // non-revoked members with public nodes, sorted
	// pos is each live node's place in its member's private list (its boot
	// list for a bootnode): where to find the entry to leave out of its answer.
	pos map[enode.ID]int

	mu      sync.Mutex
	answers map[answerKey]*groupAnswer
	legacy  map[legacyViewKey]*LegacyAnswer // the seed-compatible views (legacy.go)
}

// class is what of the policy applies to a role: validator and tx nodes are
// offered the same peers.
type class uint8

const (
	classBoot class = iota
	classPrivate
	classPublic
)

func classOf(role noderecord.Role) class {
	switch role {
	case noderecord.RoleBootnode:
		return classBoot
	case noderecord.RolePublic:
		return classPublic
	}
	return classPrivate
}

type answerKey struct {
	member string
	class  class
}

// buildGroups must be called with mu held (read is enough: it only reads
// nodes and members).
func (r *Registry) buildGroups() *groups {
	now := r.cfg.Now()
	g := &groups{
		index:   r.index,
		private: map[string][]entry{}, boot: map[string][]entry{}, public: map[string][]entry{},
		pos:     make(map[enode.ID]int, len(r.nodes)),
		answers: map[answerKey]*groupAnswer{},
		legacy:  map[legacyViewKey]*LegacyAnswer{},
	}
	for _, n := range r.nodes {
		if !n.live(now) || r.revoked(n.member) {
			continue
		}
		e := entry{id: n.id, enode: n.enode, enr: n.rec.ENR, cmt: n.rec.ConsensusAddr()}
		if n.role == noderecord.RoleBootnode {
			g.boot[n.member] = append(g.boot[n.member], e)
			continue
		}
		g.private[n.member] = append(g.private[n.member], e)
		if n.role == noderecord.RolePublic {
			g.public[n.member] = append(g.public[n.member], entry{id: n.id, enode: n.pubEnode, enr: n.pub.ENR, cmt: n.pub.ConsensusAddr()})
		}
	}
	for _, m := range []map[string][]entry{g.private, g.boot, g.public} {
		for _, es := range m {
			sort.Slice(es, func(i, j int) bool { return es[i].enode < es[j].enode })
		}
	}
	for _, m := range []map[string][]entry{g.private, g.boot} {
		for _, es := range m {
			for i, e := range es {
				g.pos[e.id] = i
			}
		}
	}
	for m := range g.public {
		g.members = append(g.members, m)
	}
	sort.Strings(g.members)
	return g
}

// currentGroups returns the groups at the current index, building them if
// no request has since the last change. Call it with mu held for reading:
// no writer can then move the index, so the groups match what the caller
// reads of nodes. Builders are serialised by groupsMu (readers never take
// it once the groups exist); nothing takes mu while holding groupsMu.
func (r *Registry) currentGroups() *groups {
	if g := r.groups.Load(); g != nil {
		return g
	}
	r.groupsMu.Lock()
	defer r.groupsMu.Unlock()
	if g := r.groups.Load(); g != nil {
		return g
	}
	g := r.buildGroups()
	r.groups.Store(g)
	return g
}

// answer returns the shared answer of member's nodes of class c, computed
// by the first request that needs it at this index.
func (r *Registry) answer(g *groups, member string, c class) *groupAnswer {
	k := answerKey{member, c}
	g.mu.Lock()
	ga, ok := g.answers[k]
	if !ok {
		ga = &groupAnswer{}
		g.answers[k] = ga
	}
	g.mu.Unlock()
	if ok {
		r.stats.PeerCacheHits.Add(1)
	}
	ga.once.Do(func() {
		ga.build(g, member, c)
		r.remember(k, g.index, ga)
	})
	return ga
}

// PeerAnswer answers which peers node id should have, at the current index.
// Only the node's own member (or the administrator) may ask. The answer
// shares its lists with every node of its group: treat it as read-only.
func (r *Registry) PeerAnswer(p Principal, id string) (*PeerAnswer, error) {
	nid, err := noderecord.ParseID(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r.mu.RLock()
	if !p.Admin && r.revoked(p.Name) {
		// A blocking query re-reads its answer at every change: the one
		// that revokes its member ends it.
		r.mu.RUnlock()
		return nil, ErrRevoked
	}
	n, ok := r.nodes[nid]
	if !ok || (!p.Admin && n.member != p.Name) {
		r.mu.RUnlock()
		return nil, errNotRegistered(id)
	}
	g := r.currentGroups()
	member, role := n.member, n.role
	r.mu.RUnlock()

	c := classOf(role)
	a := &PeerAnswer{Index: g.index, Node: nid.String(), ga: r.answer(g, member, c), skipStatic: -1, skipBoot: -1, skipCons: -1}
	// The node's own entry is in its member's private list (the head of
	// its static list) or boot list, unless its lease ran out.
	if i, ok := g.pos[nid]; ok {
		if c == classBoot {
			if i < len(a.ga.boot) && a.ga.boot[i].id == nid {
				a.skipBoot = i
			}
		} else if i < len(a.ga.static) && a.ga.static[i].id == nid {
			a.skipStatic = i
			a.skipCons = a.ga.consPos[i]
		}
	}
	a.ETag = etag(a.ga.digest, nid)
	return a, nil
}

// PeersFor is PeerAnswer in its wire form, for Go callers that want the
// lists themselves.
func (r *Registry) PeersFor(p Principal, id string) (*PeerSet, error) {
	a, err := r.PeerAnswer(p, id)
	if err != nil {
		return nil, err
	}
	return a.Set(), nil
}

// RoleAnswer answers the peer set a new node of p's member with role would
// get: what `agent init` writes before the node has ever registered.
func (r *Registry) RoleAnswer(p Principal, role string) (*PeerAnswer, error) {
	if p.Admin {
		return nil, fmt.Errorf("%w: ask with the member's credential", ErrForbidden)
	}
	ro, err := noderecord.ParseRole(role)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r.mu.RLock()
	if r.revoked(p.Name) {
		r.mu.RUnlock()
		return nil, ErrRevoked
	}
	g := r.currentGroups()
	r.mu.RUnlock()
	ga := r.answer(g, p.Name, classOf(ro))
	return &PeerAnswer{Index: g.index, Node: enode.ID{}.String(), ETag: etag(ga.digest, enode.ID{}), ga: ga, skipStatic: -1, skipBoot: -1, skipCons: -1}, nil
}

// PeersForRole is RoleAnswer in its wire form.
func (r *Registry) PeersForRole(p Principal, role string) (*PeerSet, error) {
	a, err := r.RoleAnswer(p, role)
	if err != nil {
		return nil, err
	}
	return a.Set(), nil
}

// groupAnswer is what every node of one member and class is offered at one
// index, its own entry included, and the renderings of its lists.
type groupAnswer struct {
	key    answerKey
	once   sync.Once
	static []entry // the member's private list; for a public node, then every other member's public list
	boot   []entry
	// cons is the entries of static with a consensus address, in order;
	// consPos[i] is static[i]'s place in cons, -1 if it has none.
	cons    []entry
	consPos []int
	digest  [sha256.Size]byte

	mu     sync.Mutex
	joined map[joinKey]*joined
	deltas map[[sha256.Size]byte]*groupDelta // from an earlier answer's digest (delta.go)
}

func (ga *groupAnswer) build(g *groups, member string, c class) {
	ga.key = answerKey{member, c}
	ga.boot = g.boot[member]
	switch c {
	case classPrivate:
		ga.static = g.private[member]
	case classPublic:
		n := len(g.private[member])
		for _, m := range g.members {
			if m != member {
				n += len(g.public[m])
			}
		}
		ga.static = make([]entry, 0, n)
		ga.static = append(ga.static, g.private[member]...)
		for _, m := range g.members {
			if m != member {
				ga.static = append(ga.static, g.public[m]...)
			}
		}
	}
	ga.consPos = make([]int, len(ga.static))
	for i, e := range ga.static {
		ga.consPos[i] = -1
		if e.cmt != "" {
			ga.consPos[i] = len(ga.cons)
			ga.cons = append(ga.cons, e)
		}
	}
	// The digest covers everything any node of the group is offered: each
	// peer's enode URL and record (a re-signed record changes the answer
	// too; the consensus address is part of the signed record, and is
	// hashed on its own as well) and the bootnodes. Lists and sections are delimited, so no two
	// different groups hash the same bytes.
	h := sha256.New()
	for _, e := range ga.static {
		h.Write([]byte(e.enode))
		h.Write([]byte{' '})
		h.Write([]byte(e.enr))
		h.Write([]byte{' '})
		h.Write([]byte(e.cmt))
		h.Write([]byte{'\n'})
	}
	h.Write([]byte{'|'})
	for _, e := range ga.boot {
		h.Write([]byte(e.enode))
		h.Write([]byte{'\n'})
	}
	h.Sum(ga.digest[:0])
	ga.joined = map[joinKey]*joined{}
	ga.deltas = map[[sha256.Size]byte]*groupDelta{}
}
