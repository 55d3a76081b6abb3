package registry

import (
	"crypto/sha256"
	"encoding/hex"
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

// PeerSet is one node's answer at one index. It is shared by every request
// for that node until the index moves, so treat it as read-only.
type PeerSet struct {
	Index     uint64   `json:"index"`
	Node      string   `json:"node"`
	Static    []string `json:"static"`
	Trusted   []string `json:"-"` // always Static; the toml format writes it as TrustedNodes
	Bootnodes []string `json:"bootnodes"`
	ENRs      []string `json:"-"` // served by format=enr; left out of JSON, where it would double the body
	ETag      string   `json:"-"`

	cache *renderCache // shared by copies; nil in a decoded copy
}

type renderCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

// Rendered caches one rendering of the set (by format name).
func (ps *PeerSet) Rendered(format string, render func(*PeerSet) []byte) []byte {
	if ps.cache == nil {
		return render(ps)
	}
	ps.cache.mu.Lock()
	defer ps.cache.mu.Unlock()
	if b, ok := ps.cache.m[format]; ok {
		return b
	}
	b := render(ps)
	ps.cache.m[format] = b
	return b
}

type entry struct {
	id    enode.ID
	enode string
	enr   string
}

// groups are the building blocks of every answer at one index.
type groups struct {
	private map[string][]entry // member -> live non-bootnode nodes, private endpoints
	boot    map[string][]entry // member -> live bootnodes
	public  map[string][]entry // member -> live public nodes, public endpoints
	members []string           // non-revoked members with public nodes, sorted
}

// buildGroups must be called with mu held (read is enough: it only reads
// nodes, and r.groups is written under groupsMu by the caller).
func (r *Registry) buildGroups() *groups {
	now := r.cfg.Now()
	g := &groups{private: map[string][]entry{}, boot: map[string][]entry{}, public: map[string][]entry{}}
	for _, n := range r.nodes {
		if !n.live(now) || r.revoked(n.member) {
			continue
		}
		e := entry{id: n.id, enode: n.enode, enr: n.rec.ENR}
		if n.role == noderecord.RoleBootnode {
			g.boot[n.member] = append(g.boot[n.member], e)
			continue
		}
		g.private[n.member] = append(g.private[n.member], e)
		if n.role == noderecord.RolePublic {
			g.public[n.member] = append(g.public[n.member], entry{id: n.id, enode: n.pubEnode, enr: n.pub.ENR})
		}
	}
	for _, m := range []map[string][]entry{g.private, g.boot, g.public} {
		for _, es := range m {
			sort.Slice(es, func(i, j int) bool { return es[i].enode < es[j].enode })
		}
	}
	for m := range g.public {
		g.members = append(g.members, m)
	}
	sort.Strings(g.members)
	return g
}

// PeersFor answers which peers node id should have. Only the node's own
// member (or the administrator) may ask.
func (r *Registry) PeersFor(p Principal, id string) (*PeerSet, error) {
	nid, err := noderecord.ParseID(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r.mu.RLock()
	n, ok := r.nodes[nid]
	if !ok || (!p.Admin && n.member != p.Name) {
		r.mu.RUnlock()
		if ok {
			return nil, ErrNotOwner
		}
		return nil, fmt.Errorf("%w: node %s is not registered", ErrNotFound, id)
	}
	index := r.index
	r.mu.RUnlock()

	r.cacheMu.Lock()
	if r.cacheAt == index {
		if ps, ok := r.cache[nid]; ok {
			r.cacheMu.Unlock()
			r.stats.PeerCacheHits.Add(1)
			return ps, nil
		}
	}
	r.cacheMu.Unlock()

	r.mu.Lock()
	if r.groups == nil {
		r.groups = r.buildGroups()
	}
	// Look the node up again: a registration may have replaced it.
	if n = r.nodes[nid]; n == nil {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: node %s is not registered", ErrNotFound, id)
	}
	g, index, member, role := r.groups, r.index, n.member, n.role
	r.mu.Unlock()

	ps := compute(g, index, nid, member, role)
	r.cacheMu.Lock()
	if r.cacheAt != index {
		if index < r.cacheAt {
			r.cacheMu.Unlock()
			return ps, nil
		}
		r.cache, r.cacheAt = map[enode.ID]*PeerSet{}, index
	}
	if len(r.cache) >= maxCachedSets {
		// Bound memory: a change that wakes thousands of watchers must
		// not keep every rendered answer until the next change.
		r.cache = map[enode.ID]*PeerSet{}
	}
	r.cache[nid] = ps
	r.cacheMu.Unlock()
	return ps, nil
}

// maxCachedSets bounds the per-node answer cache.
const maxCachedSets = 64

// PeersForRole answers the peer set a new node of p's member with role
// would get: what `agent init` writes before the node has ever registered.
func (r *Registry) PeersForRole(p Principal, role string) (*PeerSet, error) {
	if p.Admin {
		return nil, fmt.Errorf("%w: ask with the member's credential", ErrForbidden)
	}
	ro, err := noderecord.ParseRole(role)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r.mu.Lock()
	if r.groups == nil {
		r.groups = r.buildGroups()
	}
	g, index := r.groups, r.index
	r.mu.Unlock()
	return compute(g, index, enode.ID{}, p.Name, ro), nil
}

func compute(g *groups, index uint64, self enode.ID, member string, role noderecord.Role) *PeerSet {
	ps := &PeerSet{Index: index, Node: self.String(), Static: []string{}, Bootnodes: []string{}, ENRs: []string{}, cache: &renderCache{m: map[string][]byte{}}}
	h := sha256.New()
	if role != noderecord.RoleBootnode {
		add := func(es []entry) {
			for _, e := range es {
				if e.id == self {
					continue
				}
				ps.Static = append(ps.Static, e.enode)
				ps.ENRs = append(ps.ENRs, e.enr)
				h.Write([]byte(e.enode))
				h.Write([]byte{' '})
				h.Write([]byte(e.enr)) // a re-signed record changes the answer too
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
