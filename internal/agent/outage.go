package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/consortium/consortium/internal/registrarclient"
)

// Why outages are handled this way.
//
// While the registrar is down, every agent of the consortium retries at
// once; retrying every 250 ms (as the agent used to, its backoff reset by
// each good reconcile) made hundreds of requests and log lines per agent
// and minute, and a registrar coming back met them all. So: one loop probes
// (the watch loop, with a zero-wait query, at capped exponential gaps with
// jitter so the agents spread out); the main loop sends no renewal or
// registration while the registrar is known down, and renews the moment a
// probe gets an answer; and the log says "down", "still down" each
// OutageReport, and "back", not one line per attempt.

// retry is a capped exponential backoff with jitter.
type retry struct {
	b   *backoff.ExponentialBackOff
	max time.Duration
}

func newRetry(lo, hi time.Duration) *retry {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = lo, hi
	b.Multiplier, b.RandomizationFactor = 2, 0.2
	b.Reset()
	return &retry{b: b, max: hi}
}

func (a *Agent) newRetry() *retry { return newRetry(a.cfg.RetryMin, a.cfg.RetryMax) }

// next is the wait before the next attempt: it doubles from the low bound,
// within ±20 %, and never passes the high bound.
func (r *retry) next() time.Duration { return min(r.b.NextBackOff(), r.max) }

func (r *retry) reset() { r.b.Reset() }

// registrarDown reports whether err means the registrar did not answer
// (as opposed to answering with an error).
func registrarDown(err error) bool {
	if errors.Is(err, registrarclient.ErrUnreachable) {
		return true
	}
	for _, s := range []int{502, 503, 504} {
		if registrarclient.IsStatus(err, s) {
			return true
		}
	}
	return false
}

// outage tracks one dependency's reachability and logs only its changes:
// down, still down every report interval, back.
type outage struct {
	what   string // "registrar", "client"
	every  time.Duration
	log    *slog.Logger
	mu     sync.Mutex
	down   bool
	since  time.Time
	logged time.Time
}

// failed records a failed attempt at now; it reports whether this attempt
// began the outage.
func (o *outage) failed(now time.Time, err error) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down {
		o.down, o.since, o.logged = true, now, now
		o.log.Warn(o.what+" unreachable; keeping the current peers, retrying with backoff", "err", err)
		return true
	}
	if now.Sub(o.logged) >= o.every {
		o.logged = now
		o.log.Warn(o.what+" still unreachable", "for", now.Sub(o.since).Round(time.Second), "err", err)
	}
	return false
}

// ok records an answer at now; it reports whether this ended an outage.
func (o *outage) ok(now time.Time) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.down {
		return false
	}
	o.down = false
	o.log.Info(o.what+" reachable again", "down_for", now.Sub(o.since).Round(100*time.Millisecond))
	return true
}

func (o *outage) isDown() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.down
}

// registrarResult records the outcome of a registrar call made by any loop.
// The first failure of an outage ends the watch loop's blocking query, so
// the watch loop becomes the prober even when the registrar's host went
// silent (no reset) and the long poll would otherwise hang for a minute.
// An answer after an outage makes the main loop renew at once.
func (a *Agent) registrarResult(err error) {
	now := a.now()
	if err != nil && registrarDown(err) {
		a.setRegistrarUp(false)
		if a.regOutage.failed(now, err) {
			a.mu.Lock()
			cancel := a.watchCancel
			a.mu.Unlock()
			if cancel != nil {
				cancel()
			}
		}
		return
	}
	a.setRegistrarUp(true)
	if a.regOutage.ok(now) {
		a.mu.Lock()
		a.renewNow = true
		a.mu.Unlock()
		a.wake()
	}
}

// sleep waits for d or the end of ctx or a kick on ch (nil: none); it
// reports false when ctx ended.
func sleep(ctx context.Context, d time.Duration, ch <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-ch:
	}
	return true
}
