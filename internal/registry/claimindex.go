package registry

import (
	"strings"
	"sync"
	"time"
)

// checkClaims compared a status with every other member's live node, under
// the registry's write lock, on every renewal that carried a status: at
// 10,000 nodes that scan was most of a renewal's 420-577 µs of CPU (issue
// 19). It now reads a summary of the nodes' statuses, per member: the
// highest head its live nodes report and the coinbases they proved.
//
// The summary is rebuilt from the nodes by the first check after any change
// to the answers (bump drops it: a lapse, a removal, a revocation, a new
// record) and at least every claimMaxAge; between rebuilds each status the
// registry takes is added to it (noteStatus), and one that takes something
// back drops it. A check therefore sees what the scan saw; claimMaxAge only
// bounds what a path that changes a status without noteStatus or bump (a
// store's echo of the same record) could leave behind.
const claimMaxAge = time.Second

type claimIndex struct {
	mu    sync.Mutex
	valid bool
	built time.Time
	heads map[string]uint64              // member -> highest head of its live nodes
	coins map[string]map[string]struct{} // lower-case coinbase -> members whose live node proved it
	// rebuilds counts the scans of the nodes (tests).
	rebuilds int
}

// invalidate makes the next check rebuild the summary.
func (c *claimIndex) invalidate() {
	c.mu.Lock()
	c.valid = false
	c.mu.Unlock()
}

// addLocked adds one live node's status; c.mu held.
func (c *claimIndex) addLocked(member string, st *Status) {
	if st.Head > c.heads[member] {
		c.heads[member] = st.Head
	}
	if st.CoinbaseChecked && st.Coinbase != "" {
		k := strings.ToLower(st.Coinbase)
		ms := c.coins[k]
		if ms == nil {
			ms = map[string]struct{}{}
			c.coins[k] = ms
		}
		ms[member] = struct{}{}
	}
}

// noteStatus adds st, the status a live node of member reports now in place
// of prev, to the summary. A report that takes something back (a lower head
// that may have been the member's highest, a proven coinbase no longer
// reported) makes the next check rebuild it instead. Must be called with
// r.mu held.
func (r *Registry) noteStatus(member string, prev, st *Status) {
	c := &r.claims
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || r.revoked(member) {
		return
	}
	if prev != nil && ((prev.Head > st.Head && prev.Head >= c.heads[member]) ||
		(prev.CoinbaseChecked && (!st.CoinbaseChecked || !strings.EqualFold(prev.Coinbase, st.Coinbase)))) {
		c.valid = false
		return
	}
	c.addLocked(member, st)
}

// checkClaims refuses claims that contradict what other members' nodes
// report: a head far beyond all of theirs, a coinbase another member has
// proven its own. Must be called with mu held (read is enough).
func (r *Registry) checkClaims(member string, st *Status) error {
	now := r.cfg.Now()
	c := &r.claims
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.valid || now.Sub(c.built) >= claimMaxAge || now.Before(c.built) {
		c.heads, c.coins = map[string]uint64{}, map[string]map[string]struct{}{}
		for _, n := range r.nodes {
			if n.live(now) && !r.revoked(n.member) {
				c.addLocked(n.member, &n.status)
			}
		}
		c.valid, c.built = true, now
		c.rebuilds++
	}
	var maxHead uint64
	others := false
	for m, h := range c.heads {
		if m != member && h > 0 {
			others = true
			maxHead = max(maxHead, h)
		}
	}
	if st.Coinbase != "" {
		for m := range c.coins[strings.ToLower(st.Coinbase)] {
			if m != member {
				return claimErrCoinbase(st.Coinbase)
			}
		}
	}
	if others && st.Head > maxHead+MaxHeadLead {
		return claimErrHead(st.Head, maxHead)
	}
	return nil
}
