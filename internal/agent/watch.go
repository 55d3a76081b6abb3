package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/registrarclient"
)

// watchLoop waits on the registrar (blocking query) and hands each new set
// to the main loop. Errors keep the last set: an outage never removes peers.
// After an error the next query waits for nothing (a probe): an answer to a
// blocking query at an unchanged index would come only after WatchWait, and
// the main loop renews as soon as the registrar answers (outage.go).
func (a *Agent) watchLoop(ctx context.Context) {
	retry := a.newRetry()
	probe := true // confirm (304) or replace the saved set at once
	for ctx.Err() == nil {
		a.mu.Lock()
		index, etag := a.index, a.etag
		a.mu.Unlock()
		wait := a.cfg.WatchWait
		if probe {
			wait = 0
		}
		p, err := a.watchOnce(ctx, index, etag, wait)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errNewID) {
			probe = true
			continue
		}
		a.registrarResult(err)
		if err != nil {
			d := retry.next()
			a.log.Debug("watch failed; keeping the last peer set", "err", err, "retry", d)
			if !sleep(ctx, d, a.watchKick) {
				return
			}
			probe = true
			continue
		}
		retry.reset()
		probe = false
		if p.NotModified {
			a.mu.Lock()
			if p.Index > 0 {
				a.index = p.Index
			}
			a.haveSet = true
			a.mu.Unlock()
			continue
		}
		a.applySet(p)
	}
}

// errNewID ends a query made for the node's former ID (rotate.go): its
// answer, or its error, is not the node's any more.
var errNewID = errors.New("the node has a new ID")

// watchOnce sends one blocking query; registrarResult may end it early,
// and so may a new node key.
func (a *Agent) watchOnce(ctx context.Context, index uint64, etag string, wait time.Duration) (*registrarclient.Peers, error) {
	limit := wait + a.cfg.CallTimeout
	if wait > 0 {
		limit += 5 * time.Second // the registrar's answer may come a little after wait
	}
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	a.mu.Lock()
	a.watchCancel = cancel
	a.mu.Unlock()
	id := a.nodeID()
	p, err := a.cfg.Registrar.WatchPeers(wctx, id.String(), index, etag, wait)
	a.mu.Lock()
	a.watchCancel = nil
	a.mu.Unlock()
	if a.nodeID() != id {
		return nil, errNewID
	}
	if err != nil && wctx.Err() == context.Canceled && ctx.Err() == nil {
		// Ended by registrarResult: another call found the registrar down.
		err = fmt.Errorf("%w: ended after another call failed: %v", registrarclient.ErrUnreachable, err)
	}
	return p, err
}

// wakeWatch ends a watch backoff early (after a registration).
func (a *Agent) wakeWatch() {
	select {
	case a.watchKick <- struct{}{}:
	default:
	}
}

// applySet adopts a new set from the registrar: memory, disk, cold-start
// config, then a reconcile.
func (a *Agent) applySet(p *registrarclient.Peers) {
	nodes, err := parseEnodes(p.Static)
	if err != nil {
		a.log.Warn("registrar answer", "err", err)
	}
	a.mu.Lock()
	a.desired, a.bootnodes, a.index, a.etag, a.haveSet = nodes, p.Bootnodes, p.Index, p.ETag, true
	a.health.SetFromDisk = false
	a.health.Desired = len(nodes)
	a.mu.Unlock()
	a.m.setChanges.Inc()
	a.m.desired.Set(float64(len(nodes)))
	a.log.Info("peer set changed", "peers", len(nodes), "bootnodes", len(p.Bootnodes), "index", p.Index)
	a.setConsensusPeers(p.Consensus)
	st := State{Node: a.nodeID().String(), Index: p.Index, ETag: p.ETag, Static: p.Static, Bootnodes: p.Bootnodes, Consensus: p.Consensus, Saved: time.Now().UTC()}
	if err := SaveState(a.cfg.StateDir, st); err != nil {
		a.log.Warn("saving the peer set failed", "err", err)
	}
	if a.cfg.ConfigPath != "" {
		if err := WriteGethConfig(a.cfg.ConfigPath, api.PeerConfig(a.cfg.ListenAddr, p.Static, p.Bootnodes)); err != nil {
			a.log.Warn("rewriting the cold-start config failed", "err", err)
		}
	}
	a.wake()
}
