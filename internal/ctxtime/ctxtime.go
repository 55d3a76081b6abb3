// Package ctxtime holds waits that end early when their context ends, for
// retry loops that must stop with their owner.
package ctxtime

import (
	"context"
	"time"
)

// Sleep waits d or until ctx ends; it reports whether the wait was whole.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
