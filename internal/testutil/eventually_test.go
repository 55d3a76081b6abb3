package testutil

import (
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
