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

// sameRecord reports whether two nodes carry the same signed content, role
// and owner: what peer sets and seq checks are made of.
func sameRecord(a, b *node) bool {
	return a.rec.ENR == b.rec.ENR && pubENR(a) == pubENR(b) && a.role == b.role && a.member == b.member
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
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
	r.mu.Lock()
	old := r.nodes[n.id]
	wasLive := old != nil && old.live(now)
	removal := sn.Expires.IsZero()
	same := old != nil && sameRecord(old, n)
	switch {
	case removal:
		n.expires, n.lapsed = time.Time{}, true
	case same:
		// An echo of an older registration or renewal batch must not
		// shorten a lease renewed since.
		n.expires = later(old.expires, sn.Expires)
		if n.expires.Equal(old.expires) {
			n.lapsed = old.lapsed
		} else {
			n.lapsed = !n.expires.After(now)
		}
	default:
		n.lapsed = !n.expires.After(now)
	}
	if same {
		// Keep what memory knows better: its times are not rounded by a
		// store, and a newer lease than the stored one came with a newer
		// status.
		n.registered, n.updated = old.registered, old.updated
		if len(sn.Status) == 0 || old.expires.After(sn.Expires) {
			n.status = old.status
		}
		if n.expires.Equal(old.expires) && n.lapsed == old.lapsed && statusEqual(n.status, old.status) {
			r.mu.Unlock()
			return
		}
	}
	r.nodes[n.id] = n
	isLive := n.live(now)
	if wasLive != isLive || (isLive && !same) {
		r.bump()
	}
	kind := EventKind("")
	switch {
	case removal:
		if old != nil && !old.expires.IsZero() {
			kind = EventRemoved
		}
	case isLive && !wasLive:
		kind = EventRegistered
	case isLive && !same:
		kind = EventUpdated
	case wasLive && !isLive:
		kind = EventExpired
	}
	if kind != "" {
		r.event(Event{Kind: kind, Member: n.member, Node: n.idHex, Role: string(n.role)})
	}
	r.mu.Unlock()
	if removal || !same {
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
	n, ok := r.nodes[nid]
	if ok {
		delete(r.nodes, nid)
		if n.live(now) {
			r.bump()
		}
		kind := EventFreed
		if n.lapsed && !n.hidden && !n.expires.IsZero() && n.expires.Before(now.Add(-r.cfg.Retention)) {
			kind = EventPurged
		}
		r.event(Event{Kind: kind, Member: n.member, Node: n.idHex, Role: string(n.role)})
	}
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
	n, ok := r.nodes[nid]
	if !ok || n.expires.IsZero() {
		return
	}
	// A batch older than the lease memory holds also carries an older status.
	if st != nil && (ren.Expires.IsZero() || !n.expires.After(ren.Expires)) {
		prev := n.status
		n.status = *st
		if n.live(now) {
			r.noteStatus(n.member, &prev, st)
		}
	}
	if ren.Expires.IsZero() || !ren.Expires.After(n.expires) {
		return
	}
	wasLive, wasLapsed := n.live(now), n.lapsed
	n.expires = ren.Expires
	if n.lapsed && n.expires.After(now) {
		// Reaped here before another replica's renewal arrived.
		n.lapsed = false
	}
	if n.live(now) != wasLive {
		r.bump()
	}
	if wasLapsed && !n.lapsed {
		r.event(Event{Kind: EventRegistered, Member: n.member, Node: n.idHex, Role: string(n.role)})
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
	switch {
	case !ok:
		r.members[m.Name] = &member{Member: m}
		r.bump()
		r.event(Event{Kind: EventMemberAdded, Member: m.Name})
	case old.Hash == m.Hash && old.Revoked == m.Revoked:
		// Our own write, or the same one again: memory's times are exact.
	default:
		revoked := !old.Revoked && m.Revoked
		old.Member = m
		// A revocation takes the member's nodes out of every answer; a
		// new hash makes open dashboard streams check their credential.
		r.bump()
		if revoked {
			r.event(Event{Kind: EventMemberRevoked, Member: m.Name})
		}
	}
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
