package registry

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Reap announces every lease that has run out and returns how long to wait
// before the next call. Expiry is a pure function of (record, now): answers
// drop a lapsed record even before Reap runs, Reap only tells the watchers.
func (r *Registry) Reap() time.Duration {
	now := r.cfg.Now()
	next := now.Add(time.Second)
	if r.holdReap(now) {
		// Paused while the shared store has no quorum (watchHealth):
		// leases about to end here are carried forward in memory only
		// (never written), so answers keep the nodes that other replicas
		// may be renewing. Their real renewals, or their end, follow once
		// the store answers.
		const carry = 2 * time.Second
		r.mu.Lock()
		for _, n := range r.nodes {
			if n.live(now) && n.expires.Before(now.Add(carry)) {
				n.expires = now.Add(carry)
			}
		}
		r.mu.Unlock()
		return time.Second
	}
	var lapsed []*node
	r.mu.RLock()
	for _, n := range r.nodes {
		if n.lapsed {
			continue
		}
		if !n.expires.After(now) {
			lapsed = append(lapsed, n)
		} else if n.expires.Before(next) {
			next = n.expires
		}
	}
	legacyDue := false
	for _, es := range r.legacy {
		for _, exp := range es {
			if !exp.After(now) {
				legacyDue = true
			}
		}
	}
	r.mu.RUnlock()
	// In a stable order, so replicas tell the expiries alike.
	slices.SortFunc(lapsed, func(a, b *node) int { return strings.Compare(a.idHex, b.idHex) })
	if len(lapsed) > 0 || legacyDue {
		for _, g := range r.expire(lapsed, now) {
			if err := r.store.DeleteLegacy(context.Background(), g[0], g[1]); err != nil {
				r.log.Warn("deleting expired legacy enode failed", "err", err)
			}
		}
	}
	wait := next.Sub(now)
	// A floor keeps thousands of staggered leases from waking us constantly.
	if wait < 50*time.Millisecond {
		wait = 50 * time.Millisecond
	}
	return wait
}

// expire announces the lapse of the leases of lapsed that have run out at
// now and drops the open-POST enodes whose time is over, which it returns
// (for the store); the index moves once for them all.
func (r *Registry) expire(lapsed []*node, now time.Time) (gone [][2]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	moved := false
	for _, n := range lapsed {
		// As it is now: a writer may have changed it meanwhile.
		_, eff := r.changeNodeOnly(n.id, nodeChange{op: opExpire}, now)
		moved = moved || eff.moved
		if eff.event == EventExpired {
			r.stats.Expiries.Add(1)
		}
	}
	for net, es := range r.legacy {
		for e, exp := range es {
			if !exp.After(now) {
				delete(es, e)
				gone = append(gone, [2]string{net, e})
			}
		}
		if len(es) == 0 {
			delete(r.legacy, net)
		}
	}
	if moved || len(gone) > 0 {
		r.bump() // once for them all
	}
	return gone
}

// Purge deletes the records whose lease ran out more than the retention
// ago (issue 24: a node stopped for good kept its lapsed record, and its
// member's health said "degraded", forever), each with a "purged" event,
// and returns how many it deleted. Run calls it every minute. A purged
// node's agent that comes back registers again as a new node. Records
// removed by their member or the administrator (no lease) are left alone.
func (r *Registry) Purge(ctx context.Context) int {
	if r.cfg.Retention <= 0 {
		return 0
	}
	now := r.cfg.Now()
	if r.holdReap(now) {
		return 0
	}
	cutoff := now.Add(-r.cfg.Retention)
	due := func(n *node) bool {
		return n.lapsed && !n.hidden && !n.expires.IsZero() && n.expires.Before(cutoff)
	}
	var ids []enode.ID
	r.mu.RLock()
	for id, n := range r.nodes {
		if due(n) {
			ids = append(ids, id)
		}
	}
	r.mu.RUnlock()
	purged := 0
	for _, id := range ids {
		if ctx.Err() != nil {
			break
		}
		r.writeMu.Lock()
		r.mu.RLock()
		n, ok := r.nodes[id]
		still := ok && due(n)
		r.mu.RUnlock()
		if !still {
			// Renewed, registered again or removed meanwhile.
			r.writeMu.Unlock()
			continue
		}
		if err := r.store.DeleteNode(ctx, n.idHex); err != nil {
			r.writeMu.Unlock()
			r.log.Warn("purging a lapsed record failed; will retry", "node", n.idHex, "err", err)
			return purged
		}
		r.expect(nodeKey(n.idHex), fpDeleted)
		r.forgetRenewal(n.idHex)
		r.mu.Lock()
		// A lapsed record is in no answer: the index does not move.
		r.changeNode(id, nodeChange{op: opDelete, cause: EventPurged}, now)
		r.mu.Unlock()
		r.writeMu.Unlock()
		purged++
	}
	if purged > 0 {
		r.log.Info("purged lapsed node records past the retention", "count", purged, "retention", r.cfg.Retention)
	}
	return purged
}
