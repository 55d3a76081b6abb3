package reconcile

import (
	"bytes"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

// The agent's time rules, around Plan. Plan is timeless: it takes the
// registrar's answer at its word. Four rules soften it, each for a way geth
// behaves, and each needs to remember since when something has been so;
// Timed applies them as a pure function of the answer, the connected peers,
// those since-times and the time now, and returns the new since-times for
// the next call.
//
//   - Foreign grace: a connected peer outside the set that our own client
//     dialled may stay for ForeignGrace. Such a node was found through the
//     member's bootnodes: most likely a node of the member whose
//     registration is on its way. Dropping it would put it in our client's
//     dial history, and if it had dialled us too neither side could dial
//     again for ~35 s. A peer that dialled us gets no grace.
//   - Departure grace: a peer that left the set is kept for DepartGrace.
//     When a member comes back after its leases lapsed, its nodes register
//     again one by one; without the grace the first answers (which lack the
//     others) would cut links inside the member that never broke. The grace
//     is never more than half the lease (Rules.Lease): a node taken out of
//     the set (its member removed on chain or revoked, its record deleted)
//     must be out of every peer set within one lease, and the other half is
//     for the registrar's push and the reconcile. The nodes of a member that
//     comes back register again within about the agents' longest retry gap
//     of each other (4 s, ±20 %), which half of a lease of 10 s or more
//     still covers.
//   - Held move: a peer that moved (a new endpoint) and is connected is left
//     alone: geth takes a new endpoint for a static peer only after removing
//     it, and removing disconnects. Its static entry is renewed once it
//     disconnects; until then the applied set keeps the old endpoint.
//   - Dial stagger: the dial towards a new peer whose ID is above ours waits
//     DialStagger after it entered the set. Both agents hear of each other
//     in the same millisecond; if both nodes dial, each may keep its own
//     connection and refuse the other's, leaving none. Not when the guard
//     dropped that peer's own connection less than DialHistory ago: geth's
//     dial history then keeps it from dialling us, so nobody races our dial.

// Since holds, per node ID, since when a condition has held. Timed reads
// the previous call's and returns the next.
type Since struct {
	// Wanted: in the desired set.
	Wanted map[enode.ID]time.Time
	// Gone: out of the desired set, still within the departure grace.
	Gone map[enode.ID]time.Time
	// Dialled: connected outside the set, on a connection our client dialled.
	Dialled map[enode.ID]time.Time
}

// Rules are the grace periods; zero means no grace.
type Rules struct {
	ForeignGrace time.Duration
	DepartGrace  time.Duration
	// Lease is the lease the registrar grants this node's record; when
	// set, the departure grace is at most half of it. 0: unknown (not
	// registered yet), DepartGrace as it is.
	Lease       time.Duration
	DialStagger time.Duration
	// DialHistory is how long the client refuses to redial a node it was
	// disconnected from (geth: ~35 s).
	DialHistory time.Duration
}

// TimedInput is everything Timed looks at.
type TimedInput struct {
	Self enode.ID
	// Desired is the registrar's answer (or the last good one).
	Desired []*enode.Node
	// Previous is the set last applied (TimedPlan.Applied of the last
	// call whose actions all succeeded).
	Previous []*enode.Node
	// Actual is the client's connected peers, with Inbound set for those
	// that dialled us.
	Actual []Peer
	// Dropped is when the agent's guard disconnected each node it dropped.
	Dropped map[enode.ID]time.Time
	Since   Since
	Now     time.Time
	Rules   Rules
}

// TimedPlan is what Timed decides.
type TimedPlan struct {
	// Actions are Plan's, less those held back for now.
	Actions []Action
	// Applied is what to remember as the applied set if every action
	// succeeds: the desired set, the departed peers still within their
	// grace, and a held moved peer at its old endpoint.
	Applied []*enode.Node
	// Since is the since-times to pass to the next call.
	Since Since
	// Recheck is when a held-back action or a grace runs out and Timed
	// should be called again; 0: nothing waits.
	Recheck time.Duration
}

// Timed applies the time rules around Plan.
func Timed(in TimedInput) (TimedPlan, error) {
	var out TimedPlan
	now := in.Now
	again := func(left time.Duration) {
		if left > 0 && (out.Recheck == 0 || left < out.Recheck) {
			out.Recheck = left
		}
	}
	want := make(map[enode.ID]bool, len(in.Desired))
	for i, n := range in.Desired {
		if n == nil {
			return TimedPlan{}, &InputError{List: "desired", Index: i, Err: ErrNilNode}
		}
		want[n.ID()] = true
	}
	for i, n := range in.Previous {
		if n == nil {
			return TimedPlan{}, &InputError{List: "previous", Index: i, Err: ErrNilNode}
		}
	}
	connected := make(map[enode.ID]bool, len(in.Actual))
	for i, p := range in.Actual {
		if p.Node == nil {
			return TimedPlan{}, &InputError{List: "actual", Index: i, Err: ErrNilNode}
		}
		connected[p.Node.ID()] = true
	}

	out.Since.Wanted = since(in.Since.Wanted, want, now)

	// Foreign grace.
	out.Since.Dialled = map[enode.ID]time.Time{}
	var allowed []enode.ID
	for _, p := range in.Actual {
		id := p.Node.ID()
		if p.Inbound || want[id] {
			continue
		}
		t, ok := in.Since.Dialled[id]
		if !ok {
			t = now
		}
		out.Since.Dialled[id] = t
		if left := in.Rules.ForeignGrace - now.Sub(t); left > 0 {
			allowed = append(allowed, id)
			again(left)
		}
	}

	// Departure grace.
	out.Since.Gone = map[enode.ID]time.Time{}
	grace := in.Rules.departGrace()
	effective := append([]*enode.Node(nil), in.Desired...)
	for _, old := range in.Previous {
		id := old.ID()
		if want[id] {
			continue
		}
		t, ok := in.Since.Gone[id]
		if !ok {
			t = now
		}
		if left := grace - now.Sub(t); left > 0 {
			out.Since.Gone[id] = t
			effective = append(effective, old)
			again(left)
		}
	}

	acts, err := Plan(Input{Self: in.Self, Desired: effective, Previous: in.Previous, Actual: in.Actual, Allowed: allowed})
	if err != nil {
		return TimedPlan{}, err
	}

	// Held moves and the dial stagger.
	heldMoved := map[enode.ID]bool{}
	for _, act := range acts {
		if act.Reason == ReasonMoved && connected[act.Node.ID()] {
			heldMoved[act.Node.ID()] = true
		}
	}
	for _, act := range acts {
		id := act.Node.ID()
		if heldMoved[id] {
			continue
		}
		if act.Kind == AddPeer && !connected[id] && bytes.Compare(id[:], in.Self[:]) > 0 {
			t, wasDropped := in.Dropped[id]
			if !wasDropped || now.Sub(t) >= in.Rules.DialHistory {
				if left := in.Rules.DialStagger - now.Sub(out.Since.Wanted[id]); left > 0 {
					again(left)
					continue
				}
			}
		}
		out.Actions = append(out.Actions, act)
	}

	prev := map[enode.ID]*enode.Node{}
	for _, n := range in.Previous {
		prev[n.ID()] = n
	}
	out.Applied = make([]*enode.Node, 0, len(effective))
	for _, n := range effective {
		if heldMoved[n.ID()] && prev[n.ID()] != nil {
			n = prev[n.ID()] // still the endpoint the client holds
		}
		out.Applied = append(out.Applied, n)
	}
	return out, nil
}

// departGrace is DepartGrace, at most half the lease when it is known.
func (r Rules) departGrace() time.Duration {
	if r.Lease > 0 {
		return min(r.DepartGrace, r.Lease/2)
	}
	return r.DepartGrace
}

// since keeps each ID's time from old, and gives the new ones now.
func since(old map[enode.ID]time.Time, ids map[enode.ID]bool, now time.Time) map[enode.ID]time.Time {
	out := make(map[enode.ID]time.Time, len(ids))
	for id := range ids {
		t, ok := old[id]
		if !ok {
			t = now
		}
		out[id] = t
	}
	return out
}
