package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consortium/consortium/internal/registry"
)

// watchState is what a watcher holds between answers.
type watchState struct {
	etag  string
	index uint64
}

// primeWatchers fetches each watcher's current ETag and index. It asks for
// format=bootnodes: the ETag is the peer set's, whatever the format, and the
// body is a few hundred bytes instead of the whole set.
func primeWatchers(ctx context.Context, r *registrar, ws []spec) ([]watchState, error) {
	st := make([]watchState, len(ws))
	_, _, err := runConcurrent(64, len(ws), func(i int) error {
		a, err := r.peers(ctx, ws[i], "format=bootnodes", "", nil)
		if err != nil {
			return err
		}
		if a.etag == "" || a.index == 0 {
			return fmt.Errorf("peer set of %s came without ETag or index", ws[i].id[:8])
		}
		st[i] = watchState{etag: a.etag, index: a.index}
		return nil
	})
	return st, err
}

// roundResult is one change and what the watchers saw of it.
type roundResult struct {
	commit  time.Time // the registry's own timestamp of the change (its event)
	postAt  time.Time // when the registering client sent the change
	postRTT time.Duration
	answers []peerAnswer
}

// watchRound parks one blocking query per watcher (index + If-None-Match,
// wait 60 s, in format: "" is JSON, as registrarclient.WatchPeers asks),
// waits until the server counts them all as waiting, registers `change` (a
// new node in the watchers' member, which changes every watcher's peer set)
// and collects every answer. st is updated to the answers' ETags and
// indices for the next round.
func watchRound(ctx context.Context, r *registrar, ws []spec, st []watchState, change spec, format string) (roundResult, error) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	res := roundResult{answers: make([]peerAnswer, len(ws))}
	errc := make(chan error, len(ws))
	var wg sync.WaitGroup
	for i := range ws {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			q := "index=" + strconv.FormatUint(st[i].index, 10) + "&wait=60s"
			if format != "" {
				q += "&format=" + format
			}
			a, err := r.peers(rctx, ws[i], q, st[i].etag, nil)
			if err == nil && a.status != http.StatusOK {
				err = fmt.Errorf("watcher %s: HTTP %d, want 200 with the changed set", ws[i].id[:8], a.status)
			}
			if err == nil && a.etag == st[i].etag {
				err = fmt.Errorf("watcher %s: answered with its old ETag", ws[i].id[:8])
			}
			if err != nil {
				errc <- err
				cancel()
				return
			}
			res.answers[i] = a
		}(i)
	}
	fail := func(err error) (roundResult, error) {
		cancel()
		wg.Wait()
		return res, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, err := r.parkedWatchers(rctx)
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
	before, err := r.lastEventSeq(rctx)
	if err != nil {
		return fail(err)
	}
	res.postAt = time.Now()
	if err := r.register(rctx, change); err != nil {
		return fail(fmt.Errorf("registering the change: %w", err))
	}
	res.postRTT = time.Since(res.postAt)
	wg.Wait()
	select {
	case err := <-errc:
		return res, err
	default:
	}
	if res.commit, err = r.eventTime(ctx, before, change.id); err != nil {
		return res, err
	}
	for i, a := range res.answers {
		st[i] = watchState{etag: a.etag, index: a.index}
	}
	return res, nil
}

func (r *registrar) events(ctx context.Context, after uint64) ([]registry.Event, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", r.url+"/v1/events?after="+strconv.FormatUint(after, 10), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.admin)
	resp, err := r.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/events: HTTP %d", resp.StatusCode)
	}
	var out struct {
		Events []registry.Event `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out.Events, nil
}

func (r *registrar) lastEventSeq(ctx context.Context) (uint64, error) {
	ev, err := r.events(ctx, 0)
	if err != nil || len(ev) == 0 {
		return 0, err
	}
	return ev[len(ev)-1].Seq, nil
}

// eventTime is the registry's timestamp of node id's registration: taken
// under the registry's lock right after the store committed the record and
// the change index moved (internal/registry/nodes.go, Register).
func (r *registrar) eventTime(ctx context.Context, after uint64, id string) (time.Time, error) {
	ev, err := r.events(ctx, after)
	if err != nil {
		return time.Time{}, err
	}
	for _, e := range ev {
		if e.Node == id && (e.Kind == registry.EventRegistered || e.Kind == registry.EventUpdated) {
			return e.Time, nil
		}
	}
	return time.Time{}, fmt.Errorf("no registration event for %s", id[:8])
}

// parkedWatchers is the server's count of waiting blocking queries: read
// from its metrics registry in process, scraped from /metrics otherwise.
func (r *registrar) parkedWatchers(ctx context.Context) (int, error) {
	if r.metrics != nil {
		return r.gatherWatchers()
	}
	req, err := http.NewRequestWithContext(ctx, "GET", r.url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "consortium_registrar_watchers "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("/metrics has no consortium_registrar_watchers")
}
