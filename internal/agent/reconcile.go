package agent

import (
	"context"
	"sort"
	"time"

	"github.com/consortium/consortium/internal/reconcile"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// reconcile brings the client's peers to the desired set. It reports
// whether every action succeeded, and when to look again for a departed
// peer or a held dial whose time is not up yet (0: no need).
//
// The decisions are reconcile.Timed's (a pure function: the time rules
// around reconcile.Plan); this fetches its inputs and applies its actions.
// A connected peer outside the set is disconnected at once if it dialled
// us (the guard, guard.go, has usually done it already, within milliseconds
// of the connection; this is the path for clients without peer events),
// and after ForeignGrace if our client dialled it.
func (a *Agent) reconcile(ctx context.Context) (bool, time.Duration) {
	a.mu.Lock()
	have := a.haveSet
	desired, applied, lease := a.desired, a.applied, a.lease
	a.mu.Unlock()
	if !have {
		return true, 0 // nothing known yet: touch nothing
	}
	// The guard disconnects strangers from its own goroutine; holding this
	// while reading and changing the client keeps the two from undoing
	// each other's work.
	a.clientMu.Lock()
	defer a.clientMu.Unlock()
	peers, err := a.cfg.Client.Peers(ctx)
	if err != nil {
		a.log.Warn("reading admin_peers failed", "err", err)
		return false, 0
	}
	actual := make([]reconcile.Peer, 0, len(peers))
	for _, p := range peers {
		if p.Node != nil {
			actual = append(actual, reconcile.Peer{Node: p.Node, Trusted: p.Trusted, Inbound: p.Inbound})
		}
	}
	a.mu.Lock()
	dropped := a.dropped
	a.mu.Unlock()
	plan, err := reconcile.Timed(reconcile.TimedInput{
		Self: a.nodeID(), Desired: desired, Previous: applied, Actual: actual,
		Dropped: dropped, Since: a.since, Now: a.now(),
		Rules: reconcile.Rules{
			ForeignGrace: a.cfg.ForeignGrace, DepartGrace: a.cfg.DepartGrace, Lease: lease,
			DialStagger: a.cfg.DialStagger, DialHistory: dialHistory,
		},
	})
	if err != nil {
		a.log.Warn("planning failed", "err", err)
		return false, 0
	}
	a.since = plan.Since
	ok := a.applyAll(ctx, plan.Actions)
	if ok {
		a.mu.Lock()
		a.applied = plan.Applied
		a.mu.Unlock()
	}
	a.confirm(ctx, desired)
	return ok, plan.Recheck
}

// applyAll applies the actions in order and reports whether all succeeded.
func (a *Agent) applyAll(ctx context.Context, acts []reconcile.Action) bool {
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
	return ok
}

// confirm reads admin_peers again (addPeer's "true" proves nothing) and
// records which peers of the set are connected.
func (a *Agent) confirm(ctx context.Context, desired []*enode.Node) {
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
	a.health.LastReconcile = a.now()
	a.mu.Unlock()
	a.m.connected.Set(float64(len(connected)))
	a.m.desired.Set(float64(len(desired)))
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
