package testutil

import (
	"sync"
	"testing"
	"time"
)

// Wait receives from ch and returns what came (the zero value if ch was
// closed). If nothing comes within timeout, it fails the test with what and
// the timeout: a regression that never sends then costs one failed test,
// not a CI run that hangs until the global -timeout. Call it from the
// test's own goroutine, a defer or a Cleanup (it may call t.Fatal).
func Wait[T any](t testing.TB, timeout time.Duration, what string, ch <-chan T) T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("%s: not within %v", what, timeout)
		var zero T
		return zero
	}
}

// WaitGroup is Wait for wg. When it fails, the goroutine waiting on wg is
// left behind; it ends when wg does, if ever, which is no worse than the
// hang it replaces.
func WaitGroup(t testing.TB, timeout time.Duration, what string, wg *sync.WaitGroup) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	Wait(t, timeout, what, done)
}
