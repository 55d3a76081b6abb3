package testutil

import (
	"errors"
	"testing"
	"time"
)

// Polling starts fast, so a condition that holds almost at once costs
// little, and slows down, so a long wait on a real process (a geth head, a
// lease) does not load a busy CI machine.
const (
	firstPoll = 5 * time.Millisecond
	maxPoll   = 100 * time.Millisecond
)

// Eventually calls check until it returns nil and returns how long that
// took. If check has not returned nil within timeout, it fails the test
// with what, the timeout and check's last error. Call it from the test's
// own goroutine (it may call t.Fatal).
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	poll := firstPoll
	for {
		err := check()
		if err == nil {
			return time.Since(start)
		}
		if time.Since(start) >= timeout {
			t.Fatalf("%s: not within %v (last: %v)", what, timeout, err)
			return 0
		}
		time.Sleep(poll)
		poll = min(2*poll, maxPoll)
	}
}

// errNotYet is the last error of a boolean condition that never held.
var errNotYet = errors.New("condition false")

// EventuallyTrue is Eventually for a condition with nothing to say but
// yes or no.
func EventuallyTrue(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Eventually(t, timeout, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}
