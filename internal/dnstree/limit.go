package dnstree

import (
	"net/netip"
	"sync"
	"time"
)

// limiter is a token bucket per source: an IPv4 address, or an IPv6 /64
// (one host holds a whole /64, so a bucket per address would not limit it).
// It takes the time as an argument, so its tests are exact.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int // buckets kept at most; see allow

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(perSecond float64, burst int, maxBuckets int) *limiter {
	return &limiter{rate: perSecond, burst: float64(burst), max: maxBuckets, buckets: map[netip.Addr]*bucket{}}
}

// key is the bucket an address counts against.
func key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// allow takes one token of a's bucket at now and reports whether there was
// one.
func (l *limiter) allow(a netip.Addr, now time.Time) bool {
	k := key(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[k]
	if b == nil {
		if len(l.buckets) >= l.max {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[k] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep drops the buckets that are full again (forgetting them changes
// nothing); if that is not enough, as under a flood of spoofed sources, it
// drops them all: a spoofed flood then costs the real sources at most one
// burst, and memory stays bounded. Called with mu held.
func (l *limiter) sweep(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.max {
		clear(l.buckets)
	}
}
