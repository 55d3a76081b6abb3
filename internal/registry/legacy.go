package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/noderecord"
	"github.com/consortium/consortium/internal/store"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// legacyPut must be called with mu held for writing (or before sharing r).
func (r *Registry) legacyPut(network, en string, exp time.Time) {
	es := r.legacy[network]
	if es == nil {
		es = map[string]time.Time{}
		r.legacy[network] = es
	}
	es[en] = exp
}

// PostLegacy stores an unsigned enode from the seed's open POST /. It is
// only reachable when the operator opted in. The enode must parse (v4, with
// an IP and port) and the network must be a valid name.
func (r *Registry) PostLegacy(ctx context.Context, network, en string) error {
	if network == "" {
		network = "default"
	}
	if err := auth.ValidName(network); err != nil && network != "default" {
		return fmt.Errorf("%w: network: %v", ErrInvalid, err)
	}
	en = strings.TrimSpace(en)
	if len(en) > noderecord.MaxENRLen || strings.ContainsAny(en, ",\n\r ") {
		return fmt.Errorf("%w: enode must be one enode:// URL", ErrInvalid)
	}
	n, err := enode.ParseV4(en)
	if err != nil || n.IP() == nil || n.TCP() == 0 {
		return fmt.Errorf("%w: enode must be enode://<128 hex>@<ip>:<port>", ErrInvalid)
	}
	canon := n.URLv4()
	exp := r.cfg.Now().Add(r.cfg.LegacyTTL)
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if err := r.store.PutLegacy(ctx, store.Legacy{Network: network, Enode: canon, Expires: exp}); err != nil {
		return err
	}
	r.expect(legacyKey(network, canon), fpPut)
	r.mu.Lock()
	_, had := r.legacy[network][canon]
	r.legacyPut(network, canon, exp)
	if !had {
		r.bump()
	}
	r.mu.Unlock()
	return nil
}

// LegacyView is what the seed's read endpoints serve for one network.
// Views come from a per-index cache shared by every reader: read-only.
type LegacyView struct {
	Bootnodes []string // GET /
	Enodes    []string // GET /enodes, /staticenodes, /parityenodes
}

// LegacyAnswer is one network's seed-compatible view at one index, as a
// given kind of caller sees it, with its renderings: built once per change
// by the first reader, then served to every reader without touching the
// nodes (O(1) per request).
type LegacyAnswer struct {
	Index uint64
	View  LegacyView

	mu       sync.Mutex
	rendered map[string]*Rendered
}

// Rendered is a body rendered once for a LegacyAnswer and its strong ETag
// (a hash of the body).
type Rendered struct {
	Body []byte
	ETag string
	// Aux is a cache an encoder of the body (gzip, in httpapi) keeps
	// with it, so that work too is done once per change.
	Aux atomic.Pointer[any]
}

// Render returns the answer rendered by fn under name, made by the first
// caller at this index. name must stand for one fn (a fixed set of names).
func (a *LegacyAnswer) Render(name string, fn func(LegacyView) []byte) *Rendered {
	a.mu.Lock()
	defer a.mu.Unlock()
	if r := a.rendered[name]; r != nil {
		return r
	}
	b := fn(a.View)
	sum := sha256.Sum256(b)
	r := &Rendered{Body: b, ETag: `"` + hex.EncodeToString(sum[:16]) + `"`}
	a.rendered[name] = r
	return r
}

// legacySights is what a caller may see of a network's nodes, by role
// (SightOf, with the node listed: the groups hold listed nodes only). It
// keys the cache: callers who may see the same see the same view.
type legacySights [len(legacyRoles)]Sight

// legacyRoles index legacySights.
var legacyRoles = [...]noderecord.Role{noderecord.RoleBootnode, noderecord.RoleValidator, noderecord.RoleTx, noderecord.RolePublic}

func sightsOf(p *Principal, network string) legacySights {
	var s legacySights
	if p == nil {
		return s // anonymous: the open POST's enodes only
	}
	for i, role := range legacyRoles {
		s[i] = SightOf(*p, network, string(role), true)
	}
	return s
}

func (s legacySights) of(role noderecord.Role) Sight {
	for i, ro := range legacyRoles {
		if ro == role {
			return s[i]
		}
	}
	return SeeNothing
}

type legacyViewKey struct {
	network string
	sights  legacySights
	open    bool
}

// Legacy answers the seed's read endpoints. network maps onto a member and
// its nodes are shown as SightOf lets p see them: by private endpoint those
// p sees in full (a member its own network's, the administrator every
// network's; bootnodes apart), by public endpoint those p sees by their
// public side (another member's public nodes). Enodes posted on the open
// legacy POST are served to everyone only when open is set (the
// operator's opt-in).
func (r *Registry) Legacy(p *Principal, network string, open bool) (LegacyView, error) {
	a, err := r.LegacyAnswer(p, network, open)
	if err != nil {
		return LegacyView{}, err
	}
	return a.View, nil
}

// LegacyAnswer is Legacy from the per-index cache, with its renderings.
func (r *Registry) LegacyAnswer(p *Principal, network string, open bool) (*LegacyAnswer, error) {
	if network == "" {
		network = "default"
		if p != nil {
			network = p.Name
		}
	}
	k := legacyViewKey{network: network, sights: sightsOf(p, network), open: open}
	r.mu.RLock()
	defer r.mu.RUnlock()
	g := r.currentGroups()
	g.mu.Lock()
	a := g.legacy[k]
	g.mu.Unlock()
	if a != nil {
		return a, nil
	}
	// Built under mu for reading, like the groups: no writer moves the
	// index meanwhile. Two readers may build the same view; one wins.
	a = r.buildLegacy(g, k)
	g.mu.Lock()
	if b := g.legacy[k]; b != nil {
		a = b
	} else {
		g.legacy[k] = a
	}
	g.mu.Unlock()
	return a, nil
}

// buildLegacy must be called with mu held for reading; g is the current
// groups (live nodes of non-revoked members only, each list sorted by
// enode). A node in full shows its private endpoint (from the private or
// boot list), a node by its public side its public one (public list).
func (r *Registry) buildLegacy(g *groups, k legacyViewKey) *LegacyAnswer {
	v := LegacyView{Bootnodes: []string{}, Enodes: []string{}}
	if _, ok := r.members[k.network]; ok {
		if k.sights.of(noderecord.RoleBootnode) == SeeAll {
			for _, e := range g.boot[k.network] {
				v.Bootnodes = append(v.Bootnodes, e.enode)
			}
		}
		for _, e := range g.private[k.network] {
			if n := r.nodes[e.id]; n != nil && k.sights.of(n.role) == SeeAll {
				v.Enodes = append(v.Enodes, e.enode)
			}
		}
		if k.sights.of(noderecord.RolePublic) == SeePublic {
			for _, e := range g.public[k.network] {
				v.Enodes = append(v.Enodes, e.enode)
			}
		}
	}
	if k.open {
		now := r.cfg.Now()
		for en, exp := range r.legacy[k.network] {
			if exp.After(now) {
				v.Enodes = append(v.Enodes, en)
				v.Bootnodes = append(v.Bootnodes, en)
			}
		}
	}
	// The lists are sorted each; a view may join several (pdqsort takes
	// a sorted one in linear time).
	sort.Strings(v.Bootnodes)
	sort.Strings(v.Enodes)
	return &LegacyAnswer{Index: g.index, View: v, rendered: map[string]*Rendered{}}
}
