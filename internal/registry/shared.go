package registry

import (
	"context"
	"encoding/json"
	"time"

	"github.com/consortium/consortium/internal/noderecord"
	"github.com/consortium/consortium/internal/store"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Replicas over a shared store: each replica writes through the store as a
// lone registrar does, and applies every committed change (its own included)
// to its memory through store.Watcher. Applying is idempotent and never
// moves a lease back: renewals are written behind in batches by whichever
// replica took them, so an older batch may arrive after a newer one.
//
// A change is applied under writeMu, as a writer holds it: a local write is
// in the store and in memory before the watch may apply anything after it,
// so memory follows the store's order. The store must therefore never wait
// for its Watch callback inside a write.

// follow applies the store's changes until ctx ends.
func (r *Registry) follow(ctx context.Context) {
	for {
		err := r.watcher.Watch(ctx, r.apply)
		if ctx.Err() != nil {
			return
		}
		// Watch returns only when ctx ends; anything else is the store's
		// bug, and a replica that stops following serves a stale directory.
		r.log.Error("watching the shared store stopped; watching again", "err", err)
		t := time.NewTimer(time.Second)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// apply applies one committed change to memory.
func (r *Registry) apply(c store.Change) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	now := r.cfg.Now()
	switch {
	case c.Reload != nil:
		r.replaceState(c.Reload, now)
	case c.Node != nil:
		r.applyNode(*c.Node, now)
	case c.DeletedNode != "":
		r.applyDeletedNode(c.DeletedNode, now)
	case c.Renewal != nil:
		r.applyRenewal(*c.Renewal, now)
	case c.Member != nil:
		r.applyMember(*c.Member)
	case c.AdminHash != "":
		r.applyAdminHash(c.AdminHash)
	case c.Legacy != nil:
		r.applyLegacy(*c.Legacy, now)
	case c.DeletedLegacy != nil:
		r.applyDeletedLegacy(*c.DeletedLegacy)
	}
}

// applyNode applies a node record written by a registration or a member's
// removal (Expires zero). Must be called with writeMu held.
func (r *Registry) applyNode(sn store.Node, now time.Time) {
	n, err := nodeFromStore(sn)
	if err != nil {
		r.log.Warn("ignoring a node record from the shared store that does not verify", "node", sn.ID, "err", err)
		return
	}
	if r.superseded(nodeKey(sn.ID), nodeFP(sn)) {
		return
	}
	rule := statusUnlessOlder
	if len(sn.Status) == 0 {
		rule = statusKeep
	}
	r.mu.Lock()
	old := r.nodes[n.id]
	replaced := old == nil || n.expires.IsZero() || !sameRecord(old, n)
	r.changeNode(n.id, nodeChange{op: opPut, rec: n, status: rule}, now)
	r.mu.Unlock()
	if replaced {
		// A renewal taken for the record this one replaces must not
		// write its status over the new registration's.
		r.forgetRenewal(n.idHex)
	}
}

// applyDeletedNode applies the administrator's release of a node ID (Free),
// or another replica's purge of a lapsed record (Purge). Must be called with
// writeMu held.
func (r *Registry) applyDeletedNode(id string, now time.Time) {
	if r.superseded(nodeKey(id), fpDeleted) {
		return
	}
	nid, err := noderecord.ParseID(id)
	if err != nil {
		r.log.Warn("ignoring a deletion from the shared store with a malformed node ID", "node", id, "err", err)
		return
	}
	r.mu.Lock()
	_, ok := r.nodes[nid]
	// Freed or purged: which, the change does not say (stepNode).
	r.changeNode(nid, nodeChange{op: opDelete}, now)
	r.mu.Unlock()
	if ok {
		r.forgetRenewal(id)
	}
}

// applyRenewal extends a lease (never shortens it) and takes a newer status.
// A renewal cannot bring back a node its member removed, nor one unknown
// here. Must be called with writeMu held.
func (r *Registry) applyRenewal(ren store.Renewal, now time.Time) {
	nid, err := noderecord.ParseID(ren.ID)
	if err != nil {
		r.log.Warn("ignoring a renewal from the shared store with a malformed node ID", "node", ren.ID, "err", err)
		return
	}
	var st *Status
	if ren.Status != nil {
		s, err := ParseStatus(ren.Status)
		if err != nil {
			r.log.Warn("ignoring a status from the shared store that does not parse", "node", ren.ID, "err", err)
		} else {
			st = &s
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.nodes[nid]
	if n == nil {
		return // a renewal does not bring back a node unknown here
	}
	prev, wasLive := n.status, n.live(now) // n is changed in place
	if _, eff := r.changeNode(nid, nodeChange{op: opRenew, expires: ren.Expires, st: st}, now); eff.status && wasLive {
		r.noteStatus(n.member, &prev, st)
	}
}

// applyMember applies a member created or revoked elsewhere. Must be called
// with writeMu held.
func (r *Registry) applyMember(m store.Member) {
	if r.superseded(memberKey(m.Name), memberFP(m)) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.members[m.Name]
	var prev *store.Member
	if ok {
		prev = &old.Member
	}
	eff := stepMember(prev, m)
	switch {
	case !ok:
		r.members[m.Name] = &member{Member: m}
	case memberFP(old.Member) == memberFP(m):
		// Our own write, or the same one again: memory's times are exact.
		return
	default:
		old.Member = m
	}
	r.settleMember(m.Name, eff)
}

// applyAdminHash applies a new administrator credential hash. Must be called
// with writeMu held.
func (r *Registry) applyAdminHash(h string) {
	if r.superseded(adminKey, h) {
		return
	}
	r.mu.Lock()
	r.adminHash = h
	r.mu.Unlock()
}

// applyLegacy applies an enode posted on another replica's open POST /. Must
// be called with writeMu held.
func (r *Registry) applyLegacy(l store.Legacy, now time.Time) {
	if r.superseded(legacyKey(l.Network, l.Enode), fpPut) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	exp, had := r.legacy[l.Network][l.Enode]
	exp = later(exp, l.Expires)
	if !exp.After(now) {
		// Over already: the reaper removes it if we still hold it.
		return
	}
	r.legacyPut(l.Network, l.Enode, exp)
	if !had {
		r.bump()
	}
}

// applyDeletedLegacy applies the removal of an expired open-POST enode. Must
// be called with writeMu held.
func (r *Registry) applyDeletedLegacy(l store.Legacy) {
	if r.superseded(legacyKey(l.Network, l.Enode), fpDeleted) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	es := r.legacy[l.Network]
	if _, ok := es[l.Enode]; !ok {
		return
	}
	delete(es, l.Enode)
	if len(es) == 0 {
		delete(r.legacy, l.Network)
	}
	r.bump()
}

// replaceState makes memory the store's state: after a Reload, or after
// losing the race to initialise. Unlike Open it gives no restart grace: the
// state is current. It keeps one thing from memory, a later lease of the
// same record (a renewal not yet written, or one an older batch overwrote).
// Must be called with writeMu held.
func (r *Registry) replaceState(s *store.State, now time.Time) {
	nodes := make(map[enode.ID]*node, len(s.Nodes))
	var forget []string
	r.mu.Lock()
	for _, sn := range s.Nodes {
		n, err := nodeFromStore(sn)
		if err != nil {
			r.log.Warn("skipping a node record from the shared store that does not verify", "node", sn.ID, "err", err)
			continue
		}
		old := r.nodes[n.id]
		same := old != nil && sameRecord(old, n) && !n.expires.IsZero()
		switch {
		case same && !n.expires.After(old.expires):
			n.expires, n.lapsed = old.expires, old.lapsed
			n.registered, n.updated, n.status = old.registered, old.updated, old.status
		default:
			n.lapsed = !n.expires.After(now)
		}
		if old != nil && !same {
			forget = append(forget, n.idHex)
		}
		nodes[n.id] = n
	}
	for id, old := range r.nodes {
		if _, ok := nodes[id]; !ok {
			forget = append(forget, old.idHex)
		}
	}
	members := make(map[string]*member, len(s.Members))
	for _, m := range s.Members {
		members[m.Name] = &member{Member: m}
	}
	r.adminHash, r.members, r.nodes = s.AdminHash, members, nodes
	r.legacy = map[string]map[string]time.Time{}
	for _, l := range s.Legacy {
		if l.Expires.After(now) {
			r.legacyPut(l.Network, l.Enode, l.Expires)
		}
	}
	r.bump()
	r.mu.Unlock()
	// Everything we wrote is in the state: no echo is owed any more.
	r.echoes = map[string][]string{}
	for _, id := range forget {
		r.forgetRenewal(id)
	}
}

// statusEqual compares two statuses by their stored form.
func statusEqual(s, o Status) bool {
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(o)
	return string(a) == string(b)
}
