package testutil

import (
	"errors"
	"fmt"
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

// Poll calls check until it returns nil, and then returns nil. If check
// has not returned nil within timeout, it returns an error with the
// timeout and check's last error (wrapped). It never fails the test, so
// any goroutine may call it, and a caller may report a miss with t.Errorf
// and go on.
func Poll(timeout time.Duration, check func() error) error {
	start := time.Now()
	poll := firstPoll
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Since(start) >= timeout {
			return fmt.Errorf("not within %v (last: %w)", timeout, err)
		}
		time.Sleep(poll)
		poll = min(2*poll, maxPoll)
	}
}

// PollTrue is Poll for a condition with nothing to say but yes or no: it
// says whether cond held within timeout.
func PollTrue(timeout time.Duration, cond func() bool) bool {
	return Poll(timeout, holds(cond)) == nil
}

// Eventually calls check until it returns nil and returns how long that
// took. If check has not returned nil within timeout, it fails the test
// with what, the timeout and check's last error. Call it from the test's
// own goroutine (it may call t.Fatal); elsewhere, use Poll.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) time.Duration {
	t.Helper()
	start := time.Now()
	if err := Poll(timeout, check); err != nil {
		t.Fatalf("%s: %v", what, err)
		return 0
	}
	return time.Since(start)
}

// EventuallyTrue is Eventually for a condition with nothing to say but
// yes or no.
func EventuallyTrue(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	return Eventually(t, timeout, what, holds(cond))
}

// errNotYet is the last error of a boolean condition that never held.
var errNotYet = errors.New("condition false")

// holds turns a boolean condition into a check for Poll.
func holds(cond func() bool) func() error {
	return func() error {
		if cond() {
			return nil
		}
		return errNotYet
	}
}
