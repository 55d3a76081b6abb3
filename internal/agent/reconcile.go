package agent

import (
	"bytes"
	"context"
	"sort"
	"time"

	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/reconcile"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// recheck is the earliest time a reconcile wants to run again (0: no need).
type recheck time.Duration

func (r *recheck) at(left time.Duration) {
	if left > 0 && (*r == 0 || recheck(left) < *r) {
		*r = recheck(left)
	}
}

// reconcile brings the client's peers to the desired set. It reports
// whether every action succeeded, and when to look again for a departed
// peer or a held dial whose time is not up yet (0: no need).
//
// A connected peer outside the set is disconnected at once if it dialled
// us (the guard, guard.go, has usually done it already, within milliseconds
// of the connection; this is the path for clients without peer events),
// and after ForeignGrace if our client dialled it.
func (a *Agent) reconcile(ctx context.Context) (bool, time.Duration) {
	a.mu.Lock()
	have := a.haveSet
	desired, applied := a.desired, a.applied
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
	now := time.Now()
	var again recheck
	actual := make([]reconcile.Peer, 0, len(peers))
	connectedNow := map[enode.ID]bool{}
	for _, p := range peers {
		if p.Node != nil {
			actual = append(actual, reconcile.Peer{Node: p.Node, Trusted: p.Trusted})
			connectedNow[p.ID] = true
		}
	}
	want := make(map[enode.ID]bool, len(desired))
	for _, n := range desired {
		want[n.ID()] = true
	}
	since := a.trackWanted(want, now)
	allowed := a.dialledGrace(peers, want, now, &again)
	effective := a.departureGrace(desired, applied, want, now, &again)
	acts, err := reconcile.Plan(reconcile.Input{Self: a.id, Desired: effective, Previous: applied, Actual: actual, Allowed: allowed})
	if err != nil {
		a.log.Warn("planning failed", "err", err)
		return false, 0
	}
	acts, heldMoved := a.holdBack(acts, connectedNow, since, now, &again)
	ok := a.applyAll(ctx, acts)
	if ok {
		prev := map[enode.ID]*enode.Node{}
		for _, n := range applied {
			prev[n.ID()] = n
		}
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
	a.confirm(ctx, desired)
	return ok, time.Duration(again)
}

// trackWanted records since when each desired peer has been desired.
func (a *Agent) trackWanted(want map[enode.ID]bool, now time.Time) map[enode.ID]time.Time {
	since := make(map[enode.ID]time.Time, len(want))
	for id := range want {
		t, ok := a.wantSince[id]
		if !ok {
			t = now
		}
		since[id] = t
	}
	a.wantSince = since
	return since
}

// dialledGrace returns the connected peers outside the set that our own
// client dialled less than ForeignGrace ago (see Config.ForeignGrace).
func (a *Agent) dialledGrace(peers []ethclient.Peer, want map[enode.ID]bool, now time.Time, again *recheck) []enode.ID {
	seen := map[enode.ID]time.Time{}
	var allowed []enode.ID
	for _, p := range peers {
		if p.Node == nil || p.Inbound || want[p.ID] {
			continue
		}
		t, ok := a.dialled[p.ID]
		if !ok {
			t = now
		}
		seen[p.ID] = t
		if left := a.cfg.ForeignGrace - now.Sub(t); left > 0 {
			allowed = append(allowed, p.ID)
			again.at(left)
		}
	}
	a.dialled = seen
	return allowed
}

// departureGrace returns the desired set plus the peers that left it less
// than DepartGrace ago. When a member comes back after its leases lapsed,
// its nodes register again one by one; without the grace, the first
// answers (which lack the others) would cut links inside the member that
// never broke, and geth waits ~35 s to redial them.
func (a *Agent) departureGrace(desired, applied []*enode.Node, want map[enode.ID]bool, now time.Time, again *recheck) []*enode.Node {
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
			again.at(left)
		}
	}
	a.goneSince = gone
	return effective
}

// holdBack drops two kinds of action from the plan for now. A moved peer
// that is connected (most likely through its new endpoint) is left alone:
// geth only takes a new endpoint for a static peer after removing it, and
// removing disconnects; its static entry is renewed once it disconnects (a
// drop event or the next tick reconciles again). And the dial towards a
// new, higher-ID peer waits for DialStagger, unless the guard dropped that
// peer's own connection a moment ago: geth's dial history then keeps it
// from dialling us again for ~35 s, so nobody races our dial.
func (a *Agent) holdBack(acts []reconcile.Action, connectedNow map[enode.ID]bool, since map[enode.ID]time.Time, now time.Time, again *recheck) ([]reconcile.Action, map[enode.ID]bool) {
	heldMoved := map[enode.ID]bool{}
	for _, act := range acts {
		if act.Reason == reconcile.ReasonMoved && connectedNow[act.Node.ID()] {
			heldMoved[act.Node.ID()] = true
		}
	}
	a.mu.Lock()
	dropped := a.dropped
	a.mu.Unlock()
	kept := acts[:0]
	for _, act := range acts {
		id := act.Node.ID()
		if heldMoved[id] {
			continue
		}
		if act.Kind == reconcile.AddPeer && !connectedNow[id] && bytes.Compare(id[:], a.id[:]) > 0 {
			t, wasDropped := dropped[id]
			if !wasDropped || now.Sub(t) >= dialHistory {
				if left := a.cfg.DialStagger - now.Sub(since[id]); left > 0 {
					again.at(left)
					continue
				}
			}
		}
		kept = append(kept, act)
	}
	return kept, heldMoved
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
	a.health.LastReconcile = time.Now()
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
