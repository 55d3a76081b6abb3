package registry

import (
	"context"
	"fmt"
	"sort"
	"strings"
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
type LegacyView struct {
	Bootnodes []string // GET /
	Enodes    []string // GET /enodes, /staticenodes, /parityenodes
}

// Legacy answers the seed's read endpoints. network maps onto a member: a
// member reading its own network sees its nodes by private endpoint; reading
// another member's network it sees that member's public nodes by public
// endpoint; the administrator sees a network as its member does. Enodes
// posted on the open legacy POST are served to everyone only when open is
// set (the operator's opt-in).
func (r *Registry) Legacy(p *Principal, network string, open bool) (LegacyView, error) {
	now := r.cfg.Now()
	v := LegacyView{Bootnodes: []string{}, Enodes: []string{}}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if p != nil {
		if network == "" {
			network = p.Name
		}
		own := p.Admin || network == p.Name
		if _, ok := r.members[network]; ok && !r.revoked(network) {
			for _, n := range r.nodes {
				if n.member != network || !n.live(now) {
					continue
				}
				switch {
				case own && n.role == noderecord.RoleBootnode:
					v.Bootnodes = append(v.Bootnodes, n.enode)
				case own:
					v.Enodes = append(v.Enodes, n.enode)
				case n.role == noderecord.RolePublic:
					v.Enodes = append(v.Enodes, n.pubEnode)
				}
			}
		}
	}
	if open {
		if network == "" {
			network = "default"
		}
		for en, exp := range r.legacy[network] {
			if exp.After(now) {
				v.Enodes = append(v.Enodes, en)
				v.Bootnodes = append(v.Bootnodes, en)
			}
		}
	}
	sort.Strings(v.Bootnodes)
	sort.Strings(v.Enodes)
	return v, nil
}
