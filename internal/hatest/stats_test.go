package hatest

import (
	"fmt"
	"slices"
	"time"
)

// dist summarises durations: count, p50, p99 and max (nearest rank).
type dist struct {
	n             int
	p50, p99, max time.Duration
}

func summarise(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		k := int(float64(len(s))*p/100+0.999999) - 1
		return s[max(0, min(k, len(s)-1))]
	}
	return dist{n: len(s), p50: rank(50), p99: rank(99), max: s[len(s)-1]}
}

func (d dist) String() string {
	return fmt.Sprintf("n=%d p50=%s p99=%s max=%s", d.n, ms(d.p50), ms(d.p99), ms(d.max))
}

// ms prints a duration in milliseconds with one decimal.
func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
