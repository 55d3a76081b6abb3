package testutil

import (
	"sync"
	"testing"
	"time"
)

func TestWaitReturnsWhatCame(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	ch := make(chan int, 1)
	ch <- 7
	if got := Wait(rec, 10*time.Second, "a value", ch); got != 7 || rec.msg != "" {
		t.Fatalf("got %d, failure %q", got, rec.msg)
	}
	done := make(chan struct{})
	close(done)
	Wait(rec, 10*time.Second, "a close", done)
	if rec.msg != "" {
		t.Fatalf("failure %q on a closed channel", rec.msg)
	}
}

func TestWaitFailsWhenNothingComes(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	start := time.Now()
	got := Wait(rec, 50*time.Millisecond, "Run to return", make(chan int))
	if time.Since(start) < 50*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", time.Since(start))
	}
	if want := "Run to return: not within 50ms"; rec.msg != want || got != 0 {
		t.Fatalf("got %d, failure %q; want 0, %q", got, rec.msg, want)
	}
}

func TestWaitGroup(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	var wg sync.WaitGroup
	release := make(chan struct{})
	wg.Go(func() { <-release })
	WaitGroup(rec, 50*time.Millisecond, "the workers", &wg)
	if want := "the workers: not within 50ms"; rec.msg != want {
		t.Fatalf("failure %q, want %q", rec.msg, want)
	}
	rec.msg = ""
	close(release)
	WaitGroup(rec, 10*time.Second, "the released workers", &wg)
	if rec.msg != "" {
		t.Fatalf("failure %q after the workers ended", rec.msg)
	}
}
