package agent

import (
	"bytes"
	"context"
	"errors"
	"sort"
	"time"

	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/reconcile"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/p2p/enode"
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

// reconcile brings the client's peers to the desired set. It reports
// whether every action succeeded, and when to look again for a foreign peer
// still within its grace period (0: no need).
func (a *Agent) reconcile(ctx context.Context) (bool, time.Duration) {
	a.mu.Lock()
	have := a.haveSet
	desired, applied := a.desired, a.applied
	a.mu.Unlock()
	if !have {
		return true, 0 // nothing known yet: touch nothing
	}
	peers, err := a.cfg.Client.Peers(ctx)
	if err != nil {
		a.log.Warn("reading admin_peers failed", "err", err)
		return false, 0
	}
	want := make(map[enode.ID]bool, len(desired))
	for _, n := range desired {
		want[n.ID()] = true
	}
	now := time.Now()
	var allowed []enode.ID
	var recheck time.Duration
	seen := map[enode.ID]time.Time{}
	actual := make([]reconcile.Peer, 0, len(peers))
	for _, p := range peers {
		if p.Node == nil {
			continue
		}
		actual = append(actual, reconcile.Peer{Node: p.Node, Trusted: p.Trusted})
		if want[p.ID] {
			continue
		}
		since, ok := a.foreign[p.ID]
		if !ok {
			since = now
		}
		seen[p.ID] = since
		if left := a.cfg.ForeignGrace - now.Sub(since); left > 0 {
			allowed = append(allowed, p.ID)
			if recheck == 0 || left < recheck {
				recheck = left
			}
		}
	}
	a.foreign = seen
	connectedNow := map[enode.ID]bool{}
	for _, p := range actual {
		connectedNow[p.Node.ID()] = true
	}
	since := map[enode.ID]time.Time{}
	for id := range want {
		t, ok := a.wantSince[id]
		if !ok {
			t = now
		}
		since[id] = t
	}
	a.wantSince = since
	// Departure grace: a peer that just left the set stays for DepartGrace.
	// When a member comes back after its leases lapsed, its nodes register
	// again one by one; without this, the first answers (which lack the
	// others) would cut links inside the member that never broke, and geth
	// waits ~35 s to redial them.
	gone := map[enode.ID]time.Time{}
	effective := append([]*enode.Node(nil), desired...)
	for _, old := range applied {
		id := old.ID()
		if want[id] {
			continue
		}
		t, ok := a.goneSince[id]
		if !ok {
			t = now
		}
		if left := a.cfg.DepartGrace - now.Sub(t); left > 0 {
			gone[id] = t
			effective = append(effective, old)
			if recheck == 0 || left < recheck {
				recheck = left
			}
		}
	}
	a.goneSince = gone
	acts, err := reconcile.Plan(reconcile.Input{Self: a.id, Desired: effective, Previous: applied, Actual: actual, Allowed: allowed})
	if err != nil {
		a.log.Warn("planning failed", "err", err)
		return false, 0
	}
	// A moved peer that is connected (most likely through its new endpoint)
	// is left alone: geth only takes a new endpoint for a static peer after
	// removing it, and removing disconnects. Its static entry is renewed once
	// it disconnects (a drop event or the next tick reconciles again).
	prev := map[enode.ID]*enode.Node{}
	for _, n := range applied {
		prev[n.ID()] = n
	}
	heldMoved := map[enode.ID]bool{}
	for _, act := range acts {
		if act.Reason == reconcile.ReasonMoved && connectedNow[act.Node.ID()] {
			heldMoved[act.Node.ID()] = true
		}
	}
	// Stagger: hold back our dial to a new, higher-ID peer (see DialStagger).
	kept := acts[:0]
	for _, act := range acts {
		id := act.Node.ID()
		if heldMoved[id] {
			continue
		}
		if act.Kind == reconcile.AddPeer && !connectedNow[id] && bytes.Compare(id[:], a.id[:]) > 0 {
			if left := a.cfg.DialStagger - now.Sub(since[id]); left > 0 {
				if recheck == 0 || left < recheck {
					recheck = left
				}
				continue
			}
		}
		kept = append(kept, act)
	}
	acts = kept
	ok := true
	for _, act := range acts {
		if err := a.apply(ctx, act); err != nil {
			ok = false
			a.log.Warn("admin call failed", "action", act.String(), "err", err)
			continue
		}
		a.m.actions.WithLabelValues(act.Kind.String()).Inc()
		if act.Reason != reconcile.ReasonReassert {
			a.log.Info("peer action", "action", act.Kind.String(), "peer", act.Node.ID().TerminalString(), "reason", string(act.Reason))
		}
	}
	if ok {
		next := make([]*enode.Node, 0, len(effective))
		for _, n := range effective {
			if heldMoved[n.ID()] && prev[n.ID()] != nil {
				n = prev[n.ID()] // still the endpoint geth holds
			}
			next = append(next, n)
		}
		a.mu.Lock()
		a.applied = next
		a.mu.Unlock()
	}
	// Confirm against admin_peers: addPeer's "true" proves nothing.
	connected := map[enode.ID]bool{}
	if after, err := a.cfg.Client.Peers(ctx); err == nil {
		for _, p := range after {
			connected[p.ID] = true
		}
	}
	var missing []string
	for _, n := range desired {
		if !connected[n.ID()] {
			missing = append(missing, n.ID().TerminalString())
		}
	}
	sort.Strings(missing)
	a.mu.Lock()
	a.health.Desired, a.health.Connected, a.health.Unconnected = len(desired), len(connected), missing
	a.health.LastReconcile = time.Now()
	a.mu.Unlock()
	a.m.connected.Set(float64(len(connected)))
	a.m.desired.Set(float64(len(desired)))
	return ok, recheck
}

func (a *Agent) apply(ctx context.Context, act reconcile.Action) error {
	c := a.cfg.Client
	switch act.Kind {
	case reconcile.AddPeer:
		return c.AddPeer(ctx, act.Node)
	case reconcile.AddTrusted:
		return c.AddTrustedPeer(ctx, act.Node)
	case reconcile.RemoveTrusted:
		return c.RemoveTrustedPeer(ctx, act.Node)
	case reconcile.RemovePeer, reconcile.Disconnect:
		return c.RemovePeer(ctx, act.Node)
	}
	return nil
}

// PeerEventSource is implemented by clients that push peer connections
// (ethclient.Geth over IPC or WebSocket).
type PeerEventSource interface {
	SubscribePeerEvents(ctx context.Context, ch chan<- ethclient.PeerEvent) (ethclient.Subscription, error)
}

// peerEventLoop listens for new connections so a foreign peer is dropped at
// once, and notices a client restart (the subscription ends) to re-apply
// everything. Without events the renewal tick does both.
func (a *Agent) peerEventLoop(ctx context.Context) {
	src, ok := a.cfg.Client.(PeerEventSource)
	if !ok {
		return
	}
	backoff := a.cfg.RetryMin
	for ctx.Err() == nil {
		ch := make(chan ethclient.PeerEvent, 64)
		sub, err := src.SubscribePeerEvents(ctx, ch)
		if err != nil {
			a.log.Debug("peer events unavailable; relying on the renewal tick", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, a.cfg.RetryMax)
			continue
		}
		backoff = a.cfg.RetryMin
		a.wake() // (re)subscribed: the client may have restarted
	loop:
		for {
			select {
			case <-ctx.Done():
				sub.Unsubscribe()
				return
			case err := <-sub.Err():
				a.log.Info("peer event stream ended (client restart?)", "err", err)
				a.mu.Lock()
				a.restarted = true
				a.mu.Unlock()
				a.wake()
				break loop
			case ev := <-ch:
				if ev.Type == "drop" && a.isDesired(ev.Peer) {
					a.wake() // a held moved peer gets its new endpoint now
					continue
				}
				if ev.Type != "add" {
					continue
				}
				if a.isDesired(ev.Peer) {
					a.wake() // a peer of the set connected: the set may be complete now (reported at once)
					continue
				}
				select {
				case a.events <- ev.Peer:
				default:
					a.wake()
				}
			}
		}
	}
}

func (a *Agent) isDesired(id enode.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.desired {
		if n.ID() == id {
			return true
		}
	}
	return false
}

// onForeignPeer handles a connection from a node outside the set. It may
// be a node that registered a moment ago and whose push has not reached us
// yet: ask the registrar once before the reconcile disconnects it, so a
// newcomer is not dropped (geth would then wait ~35 s to redial it).
func (a *Agent) onForeignPeer(ctx context.Context, id enode.ID) {
	a.log.Debug("connection from a peer outside the set", "peer", id.TerminalString())
	if !a.isRegistered() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	a.mu.Lock()
	etag := a.etag
	a.mu.Unlock()
	fresh, err := a.cfg.Registrar.WatchPeers(cctx, a.id.String(), 0, etag, 0)
	if err != nil || fresh.NotModified {
		return
	}
	a.applySet(fresh)
}
