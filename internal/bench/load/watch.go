package load

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// WatchState is what a watcher holds between answers.
type WatchState struct {
	ETag  string
	Index uint64
}

// PrimeWatchers fetches each watcher's current ETag and index, watcher j
// from its home registrar. It asks for format=bootnodes: the ETag is the
// peer set's, whatever the format, and the body is a few hundred bytes
// instead of the whole set.
func (t *Target) PrimeWatchers(ctx context.Context, ws []Spec) ([]WatchState, error) {
	st := make([]WatchState, len(ws))
	_, _, err := RunConcurrent(64, len(ws), func(j int) error {
		a, err := t.Peers(ctx, t.Home(j), ws[j], "format=bootnodes", "", nil)
		if err != nil {
			return err
		}
		if a.ETag == "" || a.Index == 0 {
			return fmt.Errorf("peer set of %s came without ETag or index", ws[j].ID[:8])
		}
		st[j] = WatchState{ETag: a.ETag, Index: a.Index}
		return nil
	})
	return st, err
}

// Round is one change and what the watchers saw of it.
type Round struct {
	PostAt  time.Time // when the registering client sent the change
	PostRTT time.Duration
	Answers []Answer // indexed like the watchers
}

// WatchRound parks one blocking query per watcher on its home registrar
// (index + If-None-Match, wait 60 s, in format: "" is JSON, as
// registrarclient.WatchPeers asks), waits until the registrars count them
// all as waiting, registers change through the first registrar (a new node
// in the watchers' member, which changes every watcher's peer set) and
// collects every answer. st is updated to the answers' ETags and indices
// for the next round.
func (t *Target) WatchRound(ctx context.Context, ws []Spec, st []WatchState, change Spec, format string) (Round, error) {
	extra := ""
	if format != "" {
		extra = "format=" + format
	}
	return t.WatchRoundQuery(ctx, ws, st, change, extra)
}

// WatchRoundQuery is WatchRound with extra query parameters (such as
// "delta=1") added to each blocking query.
func (t *Target) WatchRoundQuery(ctx context.Context, ws []Spec, st []WatchState, change Spec, extra string) (Round, error) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	res := Round{Answers: make([]Answer, len(ws))}
	errc := make(chan error, len(ws))
	var wg sync.WaitGroup
	for j := range ws {
		wg.Go(func() {
			q := "index=" + strconv.FormatUint(st[j].Index, 10) + "&wait=60s"
			if extra != "" {
				q += "&" + extra
			}
			a, err := t.Peers(rctx, t.Home(j), ws[j], q, st[j].ETag, nil)
			if err == nil && (a.Status != http.StatusOK || a.ETag == st[j].ETag) {
				err = fmt.Errorf("watcher %s: HTTP %d, ETag %s (was %s): want 200 with the changed set", ws[j].ID[:8], a.Status, a.ETag, st[j].ETag)
			}
			if err != nil {
				errc <- err
				cancel()
				return
			}
			res.Answers[j] = a
		})
	}
	fail := func(err error) (Round, error) {
		cancel()
		wg.Wait()
		return res, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := t.Parked(rctx)
		if err != nil {
			return fail(err)
		}
		if n >= len(ws) {
			break
		}
		select {
		case err := <-errc:
			return fail(err)
		default:
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("only %d of %d watchers parked after 60 s", n, len(ws)))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A watcher counted by the gauge may still be taking its change channel;
	// let every one of them reach its select.
	time.Sleep(200 * time.Millisecond)
	res.PostAt = time.Now()
	if err := t.Register(rctx, t.URL(), change); err != nil {
		return fail(fmt.Errorf("registering the change: %w", err))
	}
	res.PostRTT = time.Since(res.PostAt)
	wg.Wait()
	select {
	case err := <-errc:
		return res, err
	default:
	}
	for j, a := range res.Answers {
		st[j] = WatchState{ETag: a.ETag, Index: a.Index}
	}
	return res, nil
}
