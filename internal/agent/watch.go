package agent

import (
	"context"
	"errors"
	"time"

	"github.com/consortium/consortium/internal/registrarclient"
)

// watchLoop waits on the registrar (blocking query) and hands each new set
// to the main loop. Errors keep the last set: an outage never removes peers.
func (a *Agent) watchLoop(ctx context.Context) {
	backoff := a.cfg.RetryMin
	first := true
	for ctx.Err() == nil {
		a.mu.Lock()
		index, etag := a.index, a.etag
		a.mu.Unlock()
		wait := a.cfg.WatchWait
		if first {
			wait = 0 // confirm (304) or replace the saved set at once
		}
		wctx, cancel := context.WithTimeout(ctx, wait+a.cfg.CallTimeout+5*time.Second)
		p, err := a.cfg.Registrar.WatchPeers(wctx, a.id.String(), index, etag, wait)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if errors.Is(err, registrarclient.ErrUnreachable) {
				a.setRegistrarUp(false)
			}
			a.log.Debug("watch failed; keeping the last peer set", "err", err, "retry", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			case <-a.watchKickCh():
			}
			backoff = min(backoff*2, a.cfg.RetryMax)
			continue
		}
		if backoff > a.cfg.RetryMin {
			// The registrar answers again after failures: renew (or
			// register again) now rather than at the next tick.
			a.mu.Lock()
			a.renewNow = true
			a.mu.Unlock()
			a.wake()
		}
		a.setRegistrarUp(true)
		backoff, first = a.cfg.RetryMin, false
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

func (a *Agent) watchKickCh() <-chan struct{} { return a.watchKick }

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
	st := State{Node: a.id.String(), Index: p.Index, ETag: p.ETag, Static: p.Static, Bootnodes: p.Bootnodes, Saved: time.Now().UTC()}
	if err := SaveState(a.cfg.StateDir, st); err != nil {
		a.log.Warn("saving the peer set failed", "err", err)
	}
	if a.cfg.ConfigPath != "" {
		if err := WriteGethConfig(a.cfg.ConfigPath, GethConfig{ListenAddr: a.cfg.ListenAddr, Static: p.Static, Bootnodes: p.Bootnodes}); err != nil {
			a.log.Warn("rewriting the cold-start config failed", "err", err)
		}
	}
	a.wake()
}
