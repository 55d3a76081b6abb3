package agent

import (
	"context"
	"time"

	"github.com/consortium/consortium/internal/registry"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Why the agent watches its node's head.
//
// geth 1.13 learns a peer's total difficulty from the handshake and from
// full-block broadcasts only. A node that got the latest blocks by a sync
// (not by propagation) passes them on as hash announcements, and a peer
// behind it that misses the parent drops the announced block ("unknown
// parent") and sees no peer ahead, so it never syncs. Between a member's
// signer and its public node that is a deadlock: seen in the devnet, a
// signer stuck two blocks back while the other signers, having signed
// recently, waited for it (Clique), and no block came for minutes.
//
// So when the node's head has not moved for Config.StallAfter and a peer of
// its set reports a higher head (the statuses the agents send the
// registrar, read with the member's credential), the agent reconnects that
// peer: the new handshake carries the peer's total difficulty, and geth's
// next forced sync (10 s) fetches the missing blocks.

// stallState is mainLoop's view of the node's head.
type stallState struct {
	head     uint64
	since    time.Time // the head has been head since
	lastKick time.Time
}

// aheadPeer returns the peer of want that reports the highest head above
// head, among the live nodes in view.
func aheadPeer(view []registry.NodeView, want map[enode.ID]*enode.Node, head uint64) (*enode.Node, uint64) {
	var best *enode.Node
	var bestHead uint64
	for _, v := range view {
		if !v.Live || v.Status == nil || v.Status.Head <= head || v.Status.Head <= bestHead {
			continue
		}
		id, err := enode.ParseID(v.ID)
		if err != nil {
			continue
		}
		if n := want[id]; n != nil {
			best, bestHead = n, v.Status.Head
		}
	}
	return best, bestHead
}

// stallStep runs after each reconcile; it returns when to look again.
func (a *Agent) stallStep(ctx context.Context) time.Duration {
	if a.cfg.StallAfter < 0 {
		return 0
	}
	head, err := a.cfg.Client.HeadBlock(ctx)
	if err != nil {
		return 0
	}
	now := time.Now()
	s := &a.stall
	if head != s.head || s.since.IsZero() {
		s.head, s.since = head, now
		return a.cfg.StallAfter
	}
	if now.Sub(s.since) < a.cfg.StallAfter {
		return s.since.Add(a.cfg.StallAfter).Sub(now)
	}
	if now.Sub(s.lastKick) < a.cfg.StallAfter {
		return s.lastKick.Add(a.cfg.StallAfter).Sub(now)
	}
	if syncing, err := a.cfg.Client.Syncing(ctx); err != nil || syncing {
		return a.cfg.StallAfter
	}
	a.mu.Lock()
	want := make(map[enode.ID]*enode.Node, len(a.applied))
	for _, n := range a.applied {
		want[n.ID()] = n
	}
	a.mu.Unlock()
	if len(want) == 0 {
		return a.cfg.StallAfter
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
	view, err := a.cfg.Registrar.Nodes(cctx)
	cancel()
	s.lastKick = now // also after a failed look: at most one look per StallAfter
	if err != nil {
		return a.cfg.StallAfter
	}
	peer, peerHead := aheadPeer(view, want, head)
	if peer == nil {
		return a.cfg.StallAfter
	}
	a.log.Warn("head stuck while a peer is ahead: reconnecting it so the client syncs",
		"head", head, "for", now.Sub(s.since).Round(time.Second), "peer", peer.ID().TerminalString(), "peer_head", peerHead)
	a.m.stallKicks.Inc()
	if err := a.cfg.Client.RemovePeer(ctx, peer); err != nil {
		return a.cfg.StallAfter
	}
	if err := a.cfg.Client.AddPeer(ctx, peer); err != nil {
		a.wake() // the reconcile adds it back
	}
	return a.cfg.StallAfter
}
