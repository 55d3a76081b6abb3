package agent

import (
	"context"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/ethclient"
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
// So when the node's head has not moved for the stall time (stallAfter:
// a few Clique periods) and a peer of its set reports a higher head (the statuses the agents send the
// registrar, read with the member's credential), the agent reconnects that
// peer: the new handshake carries the peer's total difficulty, and geth's
// next forced sync (10 s) fetches the missing blocks.

// stallState is mainLoop's view of the node's head.
type stallState struct {
	head     uint64
	since    time.Time // the head has been head since
	stuck    bool      // the head has stayed put for the stall time
	fresh    bool      // the client restarted and its head has not moved since
	lookAt   time.Time // when to read the registrar's node list next, while stuck
	lookGap  time.Duration
	kicked   map[enode.ID]time.Time // last reconnect of each peer
	noticeAt time.Time              // last "head stuck" log line
}

// stallNotice is the least gap between two "head stuck" log lines.
const stallNotice = 30 * time.Second

// forcedSync is geth 1.13's forced sync cycle (eth/sync.go,
// forceSyncCycle): with fewer than five peers (a consortium node's usual
// count) geth starts a sync only that often, so a node that restarted
// behind its peers gets its first blocks up to this long after it started.
const forcedSync = 10 * time.Second

// stallAfter is how long the head may stay put before the agent looks for
// a peer ahead. On a Clique chain a block is due every period, so three
// periods and two seconds without one is a stall; but never less than
// geth's forced sync cycle and 5 s (15 s), or the guard fires on a normal
// restart before geth's own first sync, and its reconnect then costs the
// ~35 s geth waits to redial (issue 24 item 5). Elsewhere (a period-0
// chain, which seals only on transactions, a chain of another kind, or an
// unknown one) 30 s.
func (a *Agent) stallAfter(info ethclient.NodeInfo) time.Duration {
	if a.cfg.StallAfter != 0 {
		return a.cfg.StallAfter
	}
	if info.Clique && info.CliquePeriod > 0 {
		return max(3*info.CliquePeriod+2*time.Second, forcedSync+5*time.Second)
	}
	return 30 * time.Second
}

// aheadPeer returns the peer of want that reports the highest head above
// head, among the live nodes in view.
func aheadPeer(view []api.NodeView, want map[enode.ID]*enode.Node, head uint64) (*enode.Node, uint64) {
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

// stallStep runs after each reconcile. It returns when to look again, and
// whether the agent should report its status now rather than at the next
// renewal: once when the head gets stuck (a stuck peer reads our head to
// find who is ahead, and the head in our last report may be older than our
// head), and once when a stuck head moves again (we may now be the peer
// ahead of a node behind us: the fork in the compose consortium's cut
// needed two such hops, public node then signer).
//
// A client (re)start restarts the clock: a restarted client reports the
// head it had when it stopped, which has not moved since then, and is not
// stuck until it has had its own chance to sync.
func (a *Agent) stallStep(ctx context.Context, info ethclient.NodeInfo, restarted bool) (time.Duration, bool) {
	after := a.stallAfter(info)
	if after < 0 {
		return 0, false
	}
	head, err := a.cfg.Client.HeadBlock(ctx)
	if err != nil {
		return 0, false
	}
	now := a.now()
	s := &a.stall
	if restarted && !s.since.IsZero() && head == s.head {
		if s.stuck {
			a.log.Info("client restarted: the stall clock starts again", "head", head)
		}
		// Its first move is reported at once, as a stuck head's is: a node
		// that was down is behind, and once it has caught up it may be the
		// peer ahead of a node that stalled while it was away.
		s.since, s.stuck, s.fresh = now, false, true
		return after, false
	}
	if head != s.head || s.since.IsZero() {
		moved := s.stuck || s.fresh
		if s.stuck {
			a.log.Info("head moving again", "head", head, "was", s.head, "stuck_for", now.Sub(s.since).Round(time.Second))
		}
		s.head, s.since, s.stuck, s.fresh = head, now, false, false
		return after, moved
	}
	if now.Sub(s.since) < after {
		return s.since.Add(after).Sub(now), false
	}
	report := false
	if !s.stuck {
		s.stuck, report = true, true
		s.lookAt, s.lookGap = now, a.cfg.StallCheck
		if now.Sub(s.noticeAt) >= stallNotice {
			s.noticeAt = now
			a.log.Info("head stuck: looking for a peer of the set that is ahead", "head", head, "for", now.Sub(s.since).Round(time.Second))
		}
	}
	// While stuck the head is read every StallCheck (a local call), so a
	// head that moves again is reported within that; the registrar's node
	// list is read at gaps that double up to the stall time.
	gap := a.cfg.StallCheck
	if now.Before(s.lookAt) {
		return min(s.lookAt.Sub(now), gap), report
	}
	s.lookAt = now.Add(s.lookGap) // also after a failed look
	s.lookGap = min(2*s.lookGap, max(after, a.cfg.StallCheck))
	if syncing, err := a.cfg.Client.Syncing(ctx); err != nil || syncing {
		return gap, report
	}
	a.stallLook(ctx, head, after, now)
	return gap, report
}

// stallLook reads the registrar's node list for a peer of the set that
// reports a higher head, and reconnects it.
func (a *Agent) stallLook(ctx context.Context, head uint64, after time.Duration, now time.Time) {
	s := &a.stall
	a.mu.Lock()
	want := make(map[enode.ID]*enode.Node, len(a.applied))
	for _, n := range a.applied {
		// A peer reconnected in the last stall time had its chance.
		if t, ok := s.kicked[n.ID()]; !ok || now.Sub(t) >= after {
			want[n.ID()] = n
		}
	}
	a.mu.Unlock()
	if len(want) == 0 || a.regOutage.isDown() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
	view, err := a.cfg.Registrar.Nodes(cctx)
	cancel()
	a.registrarResult(err)
	if err != nil {
		return
	}
	peer, peerHead := aheadPeer(view, want, head)
	if peer == nil {
		return
	}
	a.log.Warn("head stuck while a peer is ahead: reconnecting it so the client syncs",
		"head", head, "for", now.Sub(s.since).Round(time.Second), "peer", peer.ID().TerminalString(), "peer_head", peerHead)
	a.m.stallKicks.Inc()
	if s.kicked == nil {
		s.kicked = map[enode.ID]time.Time{}
	}
	for id, t := range s.kicked {
		if now.Sub(t) >= after {
			delete(s.kicked, id)
		}
	}
	s.kicked[peer.ID()] = now
	// Look again soon: the handshake and geth's sync take a second or two,
	// and if this peer cannot help, another of the set may.
	s.lookAt, s.lookGap = now.Add(a.cfg.StallCheck), a.cfg.StallCheck
	if err := a.cfg.Client.RemovePeer(ctx, peer); err != nil {
		return
	}
	if err := a.cfg.Client.AddPeer(ctx, peer); err != nil {
		a.wake() // the reconcile adds it back
	}
}
