package registry

// Renewals: a node's agent renews its lease (and reports its status) far
// more often than anything else reaches the registry, so this path takes
// the claim summary (claimindex.go) instead of scanning the nodes, and
// writes renewals to the store in batches (flush).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/consortium/consortium/internal/noderecord"
	"github.com/consortium/consortium/internal/store"
)

// Renew extends a live lease. A lapsed or unknown node gets ErrNotFound: its
// agent must register again (with its signed record).
func (r *Registry) Renew(ctx context.Context, p Principal, id string, st *Status) (NodeView, error) {
	nid, err := noderecord.ParseID(id)
	if err != nil {
		return NodeView{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if st != nil {
		if err := st.Validate(); err != nil {
			return NodeView{}, err
		}
		if err := checkProofs(st, id); err != nil {
			return NodeView{}, err
		}
	}
	now := r.cfg.Now()
	r.mu.Lock()
	if err := r.admittedLocked(p); err != nil {
		r.mu.Unlock()
		return NodeView{}, err
	}
	n, ok := r.nodes[nid]
	var claimErr error
	if ok && st != nil && n.member == p.Name {
		claimErr = r.checkClaims(p.Name, st)
	}
	switch {
	case claimErr != nil:
		r.mu.Unlock()
		return NodeView{}, claimErr
	case !ok || (!p.Admin && n.member != p.Name):
		// Another member's node answers as an unknown one: its lease
		// or existence is not the caller's to learn.
		r.mu.Unlock()
		return NodeView{}, errNotRegistered(id)
	case n.member != p.Name:
		r.mu.Unlock()
		return NodeView{}, ErrNotOwner
	case n.expires.IsZero() && n.hidden:
		r.mu.Unlock()
		return NodeView{}, fmt.Errorf("%w: node %s was removed by the administrator; register again", ErrNotFound, id)
	case n.expires.IsZero():
		r.mu.Unlock()
		return NodeView{}, fmt.Errorf("%w: node %s was removed; register a record with a higher seq", ErrNotFound, id)
	case !n.live(now):
		r.mu.Unlock()
		return NodeView{}, fmt.Errorf("%w: the lease of node %s has lapsed; register again", ErrNotFound, id)
	}
	// Never shorter than a lease another replica gave (its clock may run
	// ahead of ours).
	prev := n.status // n is changed in place
	_, eff := r.changeNode(nid, nodeChange{op: opRenew, expires: later(n.expires, now.Add(r.cfg.TTL)), st: st}, now)
	ren := store.Renewal{ID: n.idHex, Expires: n.expires}
	if eff.status {
		r.noteStatus(n.member, &prev, st)
		ren.Status, _ = json.Marshal(st)
	}
	v := NodeView{ID: n.idHex, Member: n.member, Role: string(n.role), Live: true, Expires: n.expires, Seq: n.rec.Seq}
	r.mu.Unlock()
	r.dirtyMu.Lock()
	if prev, ok := r.dirty[ren.ID]; ok && ren.Status == nil {
		ren.Status = prev.Status
	}
	r.dirty[ren.ID] = ren
	r.dirtyMu.Unlock()
	r.stats.Renewals.Add(1)
	return v, nil
}

func (r *Registry) forgetRenewal(id string) {
	r.dirtyMu.Lock()
	delete(r.dirty, id)
	r.dirtyMu.Unlock()
}

// flush writes pending renewals in one batch and reports whether they are
// written (true when there were none). It writes the expiry memory
// holds when it writes, not the one the renewal set: a renewal applied from
// another replica since may have extended it, and the store must not get
// the shorter one back.
func (r *Registry) flush(ctx context.Context) (ok bool) {
	r.dirtyMu.Lock()
	if len(r.dirty) == 0 {
		r.dirtyMu.Unlock()
		return true
	}
	batch := make([]store.Renewal, 0, len(r.dirty))
	for _, ren := range r.dirty {
		batch = append(batch, ren)
	}
	r.dirty = map[string]store.Renewal{}
	r.dirtyMu.Unlock()
	// With one process on SQLite, writeMu keeps a removal from landing
	// between reading memory and writing (which would revive the node).
	// A shared store guards that itself (etcd's Renew never extends a
	// removed node nor shortens a lease), so there registrations do not
	// wait behind a batch that etcd, without quorum, holds for seconds.
	shared := r.watcher != nil
	if !shared {
		r.writeMu.Lock()
	}
	// A removal or re-registration may have run since the batch was taken:
	// write only what memory still says, so a removed node is not revived.
	r.mu.RLock()
	kept := batch[:0]
	for _, ren := range batch {
		nid, err := noderecord.ParseID(ren.ID)
		if err != nil {
			continue
		}
		if n, ok := r.nodes[nid]; ok && !n.expires.IsZero() {
			ren.Expires = n.expires
			kept = append(kept, ren)
		}
	}
	r.mu.RUnlock()
	batch = kept
	err := r.store.Renew(ctx, batch)
	if !shared {
		r.writeMu.Unlock()
	}
	r.setStoreDown(err != nil && errors.Is(err, store.ErrUnavailable))
	if err != nil {
		r.log.Warn("writing renewals failed; they are retried", "count", len(batch), "err", err)
		r.dirtyMu.Lock()
		for _, ren := range batch {
			if _, newer := r.dirty[ren.ID]; !newer {
				r.dirty[ren.ID] = ren
			}
		}
		r.dirtyMu.Unlock()
		return false
	}
	return true
}
