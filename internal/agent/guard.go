package agent

import (
	"context"
	"time"

	"github.com/consortium/consortium/internal/ethclient"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Why strangers are dropped at once, with no grace.
//
// geth cannot refuse a node ID, so a node that is not a member, given the
// consortium's genesis, can dial a public node and is accepted. The agent
// used to let such a peer stay two seconds, in case it was a node whose
// registration had not reached us yet; a foreign geth synced a whole chain
// (head 0 to 682) in one such window. So the guard disconnects a peer
// outside the set that dialled us the moment geth reports the connection,
// and only then asks the registrar whether it is a newcomer. A newcomer is
// not lost by this: once its registration is in our answer the reconcile
// adds it as a static peer and our geth dials it at once (geth's dial
// history keeps the newcomer from dialling us for ~35 s, but not us from
// dialling it; see holdBack), so it costs the newcomer a redial, and a
// stranger gets nothing.
//
// A connection our own geth dialled is different: geth dials only its
// static peers and the nodes it found through the member's bootnodes, and
// dropping it would put the node in our dial history too. Two nodes of a
// member that start together find each other through the bootnode and
// often dial each other at once; dropping both connections left neither
// able to dial for 35 s (seen in the agent suite: the mesh took 35 s). So
// such a connection keeps ForeignGrace, for the registration to arrive
// (reconcile.go, dialledGrace).

// dialHistory is how long geth refuses to redial a node it dialled
// (p2p/dial.go: the 30 s inbound throttle and 5 s).
const dialHistory = 35 * time.Second

// admit reports whether a connected peer may stay: a peer of the set, or
// one the client still holds as a static peer (one that left the set within
// its departure grace). With no set known yet (a first start before the
// registrar answers, with nothing saved), nothing is decided: the peers of
// the cold-start config are all the client has.
func admit(id enode.ID, haveSet bool, desired, applied []*enode.Node) bool {
	if !haveSet {
		return true
	}
	for _, n := range desired {
		if n.ID() == id {
			return true
		}
	}
	for _, n := range applied {
		if n.ID() == id {
			return true
		}
	}
	return false
}

func (a *Agent) admits(id enode.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return admit(id, a.haveSet, a.desired, a.applied)
}

// guard disconnects a connected peer that admit refuses. It runs on the
// peer-event goroutine, not the main loop, so a renewal or a slow registrar
// never delays it. It reports whether it disconnected the peer.
func (a *Agent) guard(ctx context.Context, id enode.ID) bool {
	a.clientMu.Lock()
	defer a.clientMu.Unlock()
	if a.admits(id) {
		return false
	}
	// admin_removePeer takes an enode URL, and the event carries only the
	// ID: the URL comes from admin_peers.
	peers, err := a.cfg.Client.Peers(ctx)
	if err != nil {
		a.log.Warn("reading admin_peers to drop a peer outside the set failed", "err", err)
		return false
	}
	for _, p := range peers {
		if p.ID != id || p.Node == nil {
			continue
		}
		if !p.Inbound {
			a.wake() // our client dialled it: the reconcile gives it ForeignGrace
			return false
		}
		if err := a.cfg.Client.RemovePeer(ctx, p.Node); err != nil {
			a.log.Warn("disconnecting a peer outside the set failed", "peer", id.TerminalString(), "err", err)
			return false
		}
		a.m.actions.WithLabelValues("disconnect").Inc()
		a.mu.Lock()
		if a.dropped == nil {
			a.dropped = map[enode.ID]time.Time{}
		}
		now := a.now()
		for k, t := range a.dropped {
			if now.Sub(t) >= dialHistory {
				delete(a.dropped, k)
			}
		}
		a.dropped[id] = now
		a.mu.Unlock()
		a.log.Info("disconnected a peer outside the set", "peer", id.TerminalString(), "remote", p.RemoteAddr, "client", clip(p.Name, 80))
		return true
	}
	return false
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// PeerEventSource is implemented by clients that push peer connections
// (ethclient.Geth over IPC or WebSocket).
type PeerEventSource interface {
	SubscribePeerEvents(ctx context.Context, ch chan<- ethclient.PeerEvent) (ethclient.Subscription, error)
}

// peerEventLoop listens for new connections so a peer outside the set is
// dropped at once (guard), and notices a client restart (the subscription
// ends) to re-apply everything. A client without events (geth over HTTP)
// gets the guard from a poll of admin_peers every GuardPoll instead.
func (a *Agent) peerEventLoop(ctx context.Context) {
	src, ok := a.cfg.Client.(PeerEventSource)
	if !ok {
		a.guardPoll(ctx)
		return
	}
	retry := a.newRetry()
	for ctx.Err() == nil {
		ch := make(chan ethclient.PeerEvent, 64)
		sub, err := src.SubscribePeerEvents(ctx, ch)
		if err != nil {
			a.log.Debug("peer events unavailable; polling admin_peers for strangers", "err", err)
			a.guardAll(ctx)
			if !sleep(ctx, min(retry.next(), a.cfg.GuardPoll), nil) {
				return
			}
			continue
		}
		retry.reset()
		a.wake() // (re)subscribed: the client may have restarted
		a.guardAll(ctx)
		a.followEvents(ctx, sub, ch)
	}
}

// guardPoll runs the guard on admin_peers every GuardPoll.
func (a *Agent) guardPoll(ctx context.Context) {
	for sleep(ctx, a.cfg.GuardPoll, nil) {
		a.guardAll(ctx)
	}
}

// guardAll runs the guard on every connected peer that dialled us and is
// outside the set: for a client without events, and for connections made
// while no subscription was open.
func (a *Agent) guardAll(ctx context.Context) {
	peers, err := a.cfg.Client.Peers(ctx)
	if err != nil {
		return
	}
	for _, p := range peers {
		if p.Inbound && !a.admits(p.ID) && a.guard(ctx, p.ID) {
			select {
			case a.events <- p.ID:
			default:
			}
		}
	}
}

// followEvents handles one subscription until it ends.
func (a *Agent) followEvents(ctx context.Context, sub ethclient.Subscription, ch <-chan ethclient.PeerEvent) {
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
			return
		case ev := <-ch:
			switch {
			case ev.Type == "drop" && a.isDesired(ev.Peer):
				a.wake() // a held moved peer gets its new endpoint now
			case ev.Type != "add":
			case a.isDesired(ev.Peer):
				a.wake() // a peer of the set connected: the set may be complete now (reported at once)
			case a.guard(ctx, ev.Peer):
				// Dropped. It may be a node that registered a moment ago:
				// the main loop asks the registrar, and dials it if so.
				select {
				case a.events <- ev.Peer:
				default:
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

// onForeignPeer asks the registrar, once, whether a peer the guard dropped
// is in the set after all (a node that registered a moment ago, whose push
// has not reached us yet); if so the new set is applied and the reconcile
// dials it.
func (a *Agent) onForeignPeer(ctx context.Context, id enode.ID) {
	if !a.isRegistered() || a.isDesired(id) || a.regOutage.isDown() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
	defer cancel()
	a.mu.Lock()
	etag := a.etag
	a.mu.Unlock()
	fresh, err := a.cfg.Registrar.WatchPeers(cctx, a.nodeID().String(), 0, etag, 0)
	a.registrarResult(err)
	if err != nil || fresh.NotModified {
		return
	}
	a.applySet(fresh)
}
