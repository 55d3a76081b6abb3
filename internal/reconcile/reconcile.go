// Package reconcile decides which admin RPC calls bring an Ethereum client's
// peers in line with the registrar's answer. It is a pure function of its
// input (no clock, no I/O) so every rule is pinned by a table test; the agent
// fetches the input and applies the actions.
//
// The rules follow from how geth behaves (go-ethereum's
// p2p/dial.go and p2p/server.go):
//
//   - A consortium peer must be static (so geth keeps re-dialling it) and
//     trusted (so it gets a slot even when --maxpeers is reached).
//   - geth ignores admin_addPeer for a node ID it already holds as static, even
//     with a new endpoint, so a peer that moved is removed before it is added.
//   - admin_addPeer and admin_addTrustedPeer for a node geth already has are
//     no-ops, so re-asserting a desired peer that is not connected is cheap;
//     it also repairs everything a client restart forgot.
//   - geth cannot refuse a node ID, so a connected peer outside the allowed set
//     is disconnected every time it shows up (Disconnect). It can reconnect at
//     once; network-level rules are what keep it out for good.
//
// The caller guards one case this package cannot tell apart: an empty (or
// shrunken) desired set because the registrar is unreachable. The agent must
// keep using its last good set then; Plan takes Desired at its word and would
// remove every peer.
package reconcile

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Kind is what an Action does; each maps to one admin RPC call.
type Kind int

// The kinds in the order Plan emits them for one node. Removals come first:
// static peers hold peer slots, and a moved peer must be gone before it can
// be added with its new endpoint.
const (
	RemoveTrusted Kind = iota + 1 // admin_removeTrustedPeer
	RemovePeer                    // admin_removePeer: forget a static peer (and disconnect it)
	Disconnect                    // admin_removePeer on a connected peer that is not allowed
	AddPeer                       // admin_addPeer: static, re-dialled by the client
	AddTrusted                    // admin_addTrustedPeer
)

func (k Kind) String() string {
	switch k {
	case RemoveTrusted:
		return "remove-trusted"
	case RemovePeer:
		return "remove-peer"
	case Disconnect:
		return "disconnect"
	case AddPeer:
		return "add-peer"
	case AddTrusted:
		return "add-trusted"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

func (k Kind) removal() bool { return k < AddPeer }

// Reason says why an action is planned, for logs and metrics.
type Reason string

// Reasons.
const (
	// ReasonNew: the peer is desired and was not in the previous set.
	ReasonNew Reason = "new"
	// ReasonMoved: the peer is desired with an endpoint other than the
	// previous one.
	ReasonMoved Reason = "moved"
	// ReasonReassert: the peer is desired and applied before, but is not
	// connected, or connected without the trusted flag (the client
	// restarted, or someone changed it by hand).
	ReasonReassert Reason = "reassert"
	// ReasonDeparted: the peer was in the previous set and is no longer
	// desired (left, lease ran out, member revoked).
	ReasonDeparted Reason = "departed"
	// ReasonNotAllowed: a connected peer the node must not talk to.
	ReasonNotAllowed Reason = "not-allowed"
)

// Action is one admin RPC call to make.
type Action struct {
	Kind Kind
	// Node is the node to pass to the call. Only its ID matters for the
	// removals; AddPeer dials its endpoint.
	Node   *enode.Node
	Reason Reason
}

func (a Action) String() string {
	return fmt.Sprintf("%s %s (%s)", a.Kind, a.Node.URLv4(), a.Reason)
}

// Peer is a connected peer as the client reports it.
type Peer struct {
	Node    *enode.Node
	Trusted bool
	// Inbound: the peer dialled us (Timed's foreign grace is only for
	// connections our client dialled; Plan ignores it).
	Inbound bool
}

// Input is everything Plan looks at.
type Input struct {
	// Self is the node being reconciled; it is never added as its own peer.
	Self enode.ID
	// Desired is the registrar's current peer set for this node: each
	// should be static and trusted. An empty set means "no peers" and
	// removes them all; see the package comment.
	Desired []*enode.Node
	// Previous is the set the agent last applied successfully. After the
	// client restarted, or when the agent starts without a saved state,
	// it may be empty: every desired peer is then planned as new.
	Previous []*enode.Node
	// Actual is the client's connected peers (admin_peers).
	Actual []Peer
	// Allowed are node IDs that may stay connected without being desired,
	// e.g. the member's own nodes found through its bootnodes. Desired
	// peers are always allowed. A departed peer is removed even when it is
	// allowed (removing a static peer in geth disconnects it); it may come
	// back on its own.
	Allowed []enode.ID
}

// Plan returns the actions that take the client from Actual (and what was
// applied as Previous) to Desired, in a deterministic order: all removals,
// then all additions; within each, by node ID, then by Kind.
func Plan(in Input) ([]Action, error) {
	desired, err := index("desired", in.Desired)
	if err != nil {
		return nil, err
	}
	delete(desired, in.Self)
	previous, err := index("previous", in.Previous)
	if err != nil {
		return nil, err
	}
	actual := make(map[enode.ID]Peer, len(in.Actual))
	for i, p := range in.Actual {
		if p.Node == nil {
			return nil, &InputError{List: "actual", Index: i, Err: ErrNilNode}
		}
		actual[p.Node.ID()] = p
	}
	allowed := make(map[enode.ID]bool, len(in.Allowed))
	for _, id := range in.Allowed {
		allowed[id] = true
	}

	var plan []Action
	add := func(k Kind, n *enode.Node, r Reason) {
		plan = append(plan, Action{Kind: k, Node: n, Reason: r})
	}

	for id, want := range desired {
		old, known := previous[id]
		peer, connected := actual[id]
		switch {
		case !known:
			add(AddPeer, want, ReasonNew)
			add(AddTrusted, want, ReasonNew)
		case endpoint(old) != endpoint(want):
			add(RemovePeer, old, ReasonMoved)
			add(AddPeer, want, ReasonMoved)
			add(AddTrusted, want, ReasonMoved)
		case !connected || !peer.Trusted:
			add(AddPeer, want, ReasonReassert)
			add(AddTrusted, want, ReasonReassert)
		}
	}
	for id, old := range previous {
		if _, ok := desired[id]; ok || id == in.Self {
			continue
		}
		add(RemoveTrusted, old, ReasonDeparted)
		add(RemovePeer, old, ReasonDeparted)
	}
	for id, p := range actual {
		_, isDesired := desired[id]
		_, isPrevious := previous[id]
		if isDesired || isPrevious || allowed[id] || id == in.Self {
			// A departed peer is dropped by its RemovePeer above.
			continue
		}
		if p.Trusted {
			add(RemoveTrusted, p.Node, ReasonNotAllowed)
		}
		add(Disconnect, p.Node, ReasonNotAllowed)
	}

	slices.SortFunc(plan, func(a, b Action) int {
		if ra, rb := a.Kind.removal(), b.Kind.removal(); ra != rb {
			if ra {
				return -1
			}
			return 1
		}
		ida, idb := a.Node.ID(), b.Node.ID()
		if c := bytes.Compare(ida[:], idb[:]); c != 0 {
			return c
		}
		return int(a.Kind) - int(b.Kind)
	})
	return plan, nil
}

// endpoint is what geth dials: the enode URL carries the key, the IP or host
// name, and the TCP and UDP ports.
func endpoint(n *enode.Node) string { return n.URLv4() }

// index maps a list of nodes by ID. The same node twice is harmless; the
// same ID with two endpoints is a contradiction Plan refuses to guess at.
func index(list string, nodes []*enode.Node) (map[enode.ID]*enode.Node, error) {
	m := make(map[enode.ID]*enode.Node, len(nodes))
	for i, n := range nodes {
		if n == nil {
			return nil, &InputError{List: list, Index: i, Err: ErrNilNode}
		}
		if prev, ok := m[n.ID()]; ok && endpoint(prev) != endpoint(n) {
			return nil, &InputError{List: list, Index: i, Err: ErrConflict, ID: n.ID()}
		}
		m[n.ID()] = n
	}
	return m, nil
}
