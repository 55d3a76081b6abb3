package dnstree

import (
	"net/netip"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	l := newLimiter(10, 5, 1000)
	allowed := 0
	for range 100 {
		if l.allow(a, t0) {
			allowed++
		}
	}
	if allowed != 5 {
		t.Errorf("a burst of 100 at one instant: %d allowed, want the burst, 5", allowed)
	}
	if !l.allow(b, t0) {
		t.Error("another source was limited by a's flood")
	}
	if l.allow(a, t0.Add(50*time.Millisecond)) {
		t.Error("half a token after 50 ms at 10/s was allowed")
	}
	if !l.allow(a, t0.Add(100*time.Millisecond)) {
		t.Error("a token after 100 ms at 10/s was refused")
	}
	// One IPv6 /64 is one source.
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::ffff:2")
	for range 5 {
		l.allow(v6a, t0)
	}
	if l.allow(v6b, t0) {
		t.Error("a second address of the same /64 got its own bucket")
	}
	if !l.allow(netip.MustParseAddr("2001:db8:0:1::1"), t0) {
		t.Error("the next /64 was limited")
	}
}

// TestLimiterBounded: a flood of spoofed sources never grows the map past
// its bound.
func TestLimiterBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := newLimiter(10, 5, 100)
	for i := range 10_000 {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0)
		if len(l.buckets) > 100 {
			t.Fatalf("%d buckets after %d sources, bound 100", len(l.buckets), i+1)
		}
	}
}
