package testutil

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// fatalRecorder records Fatalf instead of stopping the goroutine, so the
// test can look at how Eventually fails.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}

func (f *fatalRecorder) Fatalf(format string, args ...any) { f.msg = fmt.Sprintf(format, args...) }

func TestEventuallyReturnsOnceTheCheckPasses(t *testing.T) {
	calls := 0
	rec := &fatalRecorder{TB: t}
	Eventually(rec, 10*time.Second, "third call", func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if rec.msg != "" || calls != 3 {
		t.Fatalf("calls %d, failure %q", calls, rec.msg)
	}
}

func TestEventuallyFailsWithTheLastError(t *testing.T) {
	calls := 0
	rec := &fatalRecorder{TB: t}
	start := time.Now()
	Eventually(rec, 50*time.Millisecond, "the head at 3", func() error {
		calls++
		return fmt.Errorf("head %d", calls)
	})
	if time.Since(start) < 50*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", time.Since(start))
	}
	want := fmt.Sprintf("the head at 3: not within 50ms (last: head %d)", calls)
	if rec.msg != want {
		t.Fatalf("failure %q, want %q", rec.msg, want)
	}
}

func TestEventuallyTrue(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	EventuallyTrue(rec, 20*time.Millisecond, "never", func() bool { return false })
	if !strings.HasPrefix(rec.msg, "never: not within 20ms") {
		t.Fatalf("failure %q", rec.msg)
	}
	rec.msg = ""
	EventuallyTrue(rec, time.Second, "at once", func() bool { return true })
	if rec.msg != "" {
		t.Fatalf("failure %q", rec.msg)
	}
}

func TestPollReturnsNilOnceTheCheckPasses(t *testing.T) {
	calls := 0
	err := Poll(10*time.Second, func() error {
		calls++
		if calls < 3 {
			return fmt.Errorf("call %d", calls)
		}
		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("calls %d, error %v", calls, err)
	}
}

// Poll gives up at its timeout with the last error, wrapped, and without
// failing the test: here it runs in a goroutine of its own.
func TestPollTimesOutWithTheLastError(t *testing.T) {
	errHead := errors.New("head")
	type result struct {
		err   error
		calls int
		took  time.Duration
	}
	done := make(chan result, 1)
	go func() {
		calls := 0
		start := time.Now()
		err := Poll(50*time.Millisecond, func() error {
			calls++
			return fmt.Errorf("%w %d", errHead, calls)
		})
		done <- result{err, calls, time.Since(start)}
	}()
	r := Wait(t, 10*time.Second, "Poll to give up", done)
	if r.took < 50*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", r.took)
	}
	if r.calls < 2 {
		t.Errorf("%d calls in 50ms", r.calls)
	}
	want := fmt.Sprintf("not within 50ms (last: head %d)", r.calls)
	if r.err == nil || r.err.Error() != want || !errors.Is(r.err, errHead) {
		t.Fatalf("error %v, want %q wrapping the check's", r.err, want)
	}
}

func TestPollTrue(t *testing.T) {
	if PollTrue(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never held: true")
	}
	calls := 0
	if !PollTrue(10*time.Second, func() bool { calls++; return calls == 2 }) || calls != 2 {
		t.Fatalf("a condition that held at the second call: false after %d calls", calls)
	}
}
