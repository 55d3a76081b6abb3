package agent

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/registrarclient"
)

// The backoff doubles from its low bound, jitters within ±20 %, and never
// passes its high bound; reset starts it again.
func TestRetryBounds(t *testing.T) {
	r := newRetry(250*time.Millisecond, 4*time.Second)
	for round := 0; round < 2; round++ {
		var got []time.Duration
		for i := 0; i < 12; i++ {
			got = append(got, r.next())
		}
		if got[0] < 200*time.Millisecond || got[0] > 300*time.Millisecond {
			t.Fatalf("first wait %v, want 250 ms ± 20 %%", got[0])
		}
		for i, d := range got {
			if d > 4*time.Second {
				t.Fatalf("wait %d is %v, above the 4 s cap: %v", i, d, got)
			}
		}
		if got[11] < 3200*time.Millisecond {
			t.Fatalf("the waits do not reach the cap: %v", got)
		}
		r.reset()
	}
}

// Over a 60 s outage with the default bounds the probes stay under the bar
// (30), whatever the jitter draws.
func TestRetryAttemptsPerMinute(t *testing.T) {
	for run := 0; run < 200; run++ {
		r := newRetry(250*time.Millisecond, 4*time.Second)
		n, elapsed := 1, time.Duration(0) // the call that found it down
		for elapsed < time.Minute {
			elapsed += r.next()
			n++
		}
		if n > 26 {
			t.Fatalf("%d probes in a minute", n)
		}
	}
}

// An outage is logged when it starts, each report interval while it lasts,
// and when it ends: not per attempt.
func TestOutageLogsChangesOnly(t *testing.T) {
	var buf bytes.Buffer
	o := outage{what: "registrar", every: time.Minute, log: slog.New(slog.NewTextHandler(&buf, nil))}
	t0 := time.Unix(1000, 0)
	err := fmt.Errorf("%w: refused", registrarclient.ErrUnreachable)
	if !o.failed(t0, err) {
		t.Fatal("the first failure did not start the outage")
	}
	for s := 1; s <= 150; s++ {
		if o.failed(t0.Add(time.Duration(s)*time.Second), err) {
			t.Fatal("a later failure started the outage again")
		}
	}
	if !o.ok(t0.Add(151 * time.Second)) {
		t.Fatal("the answer did not end the outage")
	}
	if o.ok(t0.Add(152 * time.Second)) {
		t.Fatal("a second answer ended it again")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	want := []string{"registrar unreachable", "still unreachable", "still unreachable", "reachable again"}
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d %q lacks %q", i, lines[i], w)
		}
	}
}

func TestRegistrarDown(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("%w: refused", registrarclient.ErrUnreachable), true},
		{&registrarclient.APIError{Status: 503}, true},
		{&registrarclient.APIError{Status: 504}, true},
		{&registrarclient.APIError{Status: 404}, false},
		{&registrarclient.APIError{Status: 401}, false},
		{errors.New("other"), false},
	} {
		if got := registrarDown(tc.err); got != tc.want {
			t.Errorf("registrarDown(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
