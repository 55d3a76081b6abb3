package registry

import "sync/atomic"

// Stats are the registry's counters, read by the metrics collector.
type Stats struct {
	Registrations        atomic.Uint64
	RegistrationBatches  atomic.Uint64 // store transactions registrations were written in
	RegistrationsRefused atomic.Uint64
	Renewals             atomic.Uint64
	Expiries             atomic.Uint64
	PeerCacheHits        atomic.Uint64
}

// Stats returns the live counters.
func (r *Registry) Stats() *Stats { return &r.stats }

// Gauge is one (member, role, live) count of nodes.
type Gauge struct {
	Member string
	Role   string
	Live   bool
	Count  int
}

// NodeCounts counts nodes by member, role and liveness.
func (r *Registry) NodeCounts() []Gauge {
	now := r.cfg.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	type key struct {
		m, r string
		l    bool
	}
	counts := map[key]int{}
	for _, n := range r.nodes {
		if n.hidden {
			continue
		}
		counts[key{n.member, string(n.role), n.live(now) && !r.revoked(n.member)}]++
	}
	out := make([]Gauge, 0, len(counts))
	for k, c := range counts {
		out = append(out, Gauge{Member: k.m, Role: k.r, Live: k.l, Count: c})
	}
	return out
}
