package registry

import (
	"slices"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/noderecord"
	"github.com/consortium/consortium/internal/store"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// The registry's transitions: what a change does to a node or a member,
// whether it moves any peer answer (the change index must move, bump) and
// which event it tells. Local writes (nodes.go, renew.go, reap.go,
// members.go, chain.go) and the writes replicated from other registrars
// (shared.go) both go through these functions, so a replica applying a
// change moves and tells what the registrar that made it did. stepNode and
// stepMember are pure; changeNode and settleMember apply their results to
// memory, the index and the events, with the caller holding the locks and
// having written the store.

// effect is what a change does besides changing the state.
type effect struct {
	// moved: some peer answer may differ. Answers are cached per index,
	// so an answer that might have held the node before must move too.
	moved bool
	event EventKind // "" for none
	// left: the node was public and up (other members may hold it) and
	// is public no more. Told first (EventLeft, role public): event is
	// told in the node's new role, which other members do not see.
	left bool
	// status: a renewal's status was taken (for the claim summary,
	// noteStatus).
	status bool
	// nodes: a member's change takes its live nodes out of the answers
	// or brings them back (settleMember tells each, memberNodeEvents).
	nodes memberMove
}

// memberMove is what a member's change does to its nodes' place in the
// answers.
type memberMove uint8

const (
	nodesStay  memberMove = iota
	nodesLeave            // revoked: its nodes leave every answer
	nodesJoin             // admitted or readmitted: its live nodes are offered again
)

// nodeOp is the kind of a change to a node.
type nodeOp uint8

const (
	opPut    nodeOp = iota // a record written: a registration, or a removal (no lease)
	opRenew                // its lease extended, maybe with a status
	opExpire               // its lease ran out (the reaper)
	opDelete               // its record deleted: freed, or purged after the retention
)

// statusRule says what status a written record brings.
type statusRule uint8

const (
	// statusKeep: none (a store row without one); memory's stays.
	statusKeep statusRule = iota
	// statusUnlessOlder: a stored row's; memory's stays if it holds a
	// later lease, which came with a newer status.
	statusUnlessOlder
	// statusTake: this registrar's registration; it is the newest.
	statusTake
)

// nodeChange is one change to one node.
type nodeChange struct {
	op     nodeOp
	rec    *node      // opPut: the node as written; a zero lease is a removal
	status statusRule // opPut
	// opRenew: the lease's new end (zero: none) and the status reported
	// (nil: none).
	expires time.Time
	st      *Status
	// opDelete: EventFreed or EventPurged; "" when not known (a deletion
	// replicated from another registrar): purged if its lease ran out
	// more than retention ago, else freed.
	cause EventKind
}

// outcome is what memory holds of a node after a change.
type outcome uint8

const (
	keepOld  outcome = iota // a repeat, or nothing to change: memory stays as it is
	holdNext                // hold the node stepNode returned
	dropNode                // hold none
)

// stepNode is the transition of node old (nil: unknown here) under change
// c at now: the node after it, what memory is to hold, and the effect. It
// never shortens a lease of the same record, nor revives a removed node by
// a renewal.
func stepNode(old *node, c nodeChange, now time.Time, retention time.Duration) (node, outcome, effect) {
	switch c.op {
	case opPut:
		return stepPut(old, c, now)
	case opRenew:
		if old == nil || old.expires.IsZero() {
			return node{}, keepOld, effect{}
		}
		n := *old
		var eff effect
		// A renewal older than the lease memory holds carries an older status.
		if c.st != nil && (c.expires.IsZero() || !n.expires.After(c.expires)) {
			n.status, eff.status = *c.st, true
		}
		if c.expires.After(n.expires) {
			n.expires = c.expires
			// Reaped here before another registrar's renewal arrived.
			n.lapsed = n.lapsed && !n.expires.After(now)
		}
		eff.moved, eff.event = nodeMoved(old, &n, true, now)
		return n, holdNext, eff
	case opExpire:
		if old == nil || old.lapsed || old.expires.After(now) {
			return node{}, keepOld, effect{}
		}
		n := *old
		n.lapsed = true
		var eff effect
		eff.moved, eff.event = nodeMoved(old, &n, true, now)
		return n, holdNext, eff
	case opDelete:
		if old == nil {
			return node{}, keepOld, effect{}
		}
		eff := effect{moved: !old.lapsed, event: c.cause}
		if eff.event == "" {
			eff.event = EventFreed
			if old.lapsed && !old.hidden && !old.expires.IsZero() && old.expires.Before(now.Add(-retention)) {
				eff.event = EventPurged
			}
		}
		return node{}, dropNode, eff
	}
	return node{}, keepOld, effect{}
}

// stepPut is stepNode for a written record.
func stepPut(old *node, c nodeChange, now time.Time) (node, outcome, effect) {
	n := *c.rec
	same := old != nil && sameRecord(old, &n)
	switch {
	case n.expires.IsZero():
		n.lapsed = true
	case same:
		// An echo of an older registration or renewal batch must not
		// shorten a lease renewed since.
		n.expires = later(old.expires, n.expires)
		n.lapsed = !n.expires.After(now)
		if n.expires.Equal(old.expires) {
			n.lapsed = old.lapsed
		}
	default:
		n.lapsed = !n.expires.After(now)
	}
	var eff effect
	if same {
		// Keep what memory knows better: its times are not rounded by a
		// store, and a later lease than the written one came with a
		// newer status.
		n.registered, n.updated = old.registered, old.updated
		if c.status == statusKeep || (c.status == statusUnlessOlder && old.expires.After(c.rec.expires)) {
			n.status = old.status
		}
		if n.expires.Equal(old.expires) && n.lapsed == old.lapsed && n.hidden == old.hidden && statusEqual(n.status, old.status) {
			return node{}, keepOld, effect{}
		}
	}
	eff.moved, eff.event = nodeMoved(old, &n, same, now)
	// Other members see a node only while it is public (SightOf), and
	// every event is told in the node's role after the change.
	eff.left = old != nil && !old.lapsed && old.role == noderecord.RolePublic && n.role != noderecord.RolePublic
	if n.expires.IsZero() {
		// A removal: told once, when it ends a lease.
		eff.event = ""
		if old != nil && !old.expires.IsZero() {
			eff.event = EventRemoved
		}
	}
	return n, holdNext, eff
}

// nodeMoved is the rule behind every node's change, from old (nil: none)
// to n, whose records are the same as old's when same: whether an answer
// may differ, and the event. A node is in the answers while it is live; a
// node not yet announced gone (not lapsed) may still be in an answer
// cached before its lease ran out. Events tell what watchers were last
// told otherwise: registered when it comes up, updated when its records
// change while up, expired when it goes.
func nodeMoved(old, n *node, same bool, now time.Time) (bool, EventKind) {
	wasLive, isLive := old != nil && old.live(now), n.live(now)
	wasUp := old != nil && !old.lapsed
	moved := (isLive && !(wasLive && same)) || (!isLive && wasUp)
	switch {
	case isLive && !wasUp:
		return moved, EventRegistered
	case isLive && !same:
		return moved, EventUpdated
	case !isLive && wasUp:
		return moved, EventExpired
	}
	return moved, ""
}

// stepMember is the transition of member old (nil: unknown here) to m: a
// new member, or one back from revocation or with a new credential, is
// added; one newly revoked is revoked. Any change moves the answers: a
// revocation takes the member's nodes out of every answer (nodesLeave), a
// readmission brings them back (nodesJoin; so does a new member, as an
// unknown member's nodes are in no answer), and a new hash makes open
// dashboard streams check their credential.
func stepMember(old *store.Member, m store.Member) effect {
	switch {
	case old == nil && m.Revoked:
		// Known here only once revoked (a replica that missed its
		// admission): told as before, none of its nodes in an answer.
		return effect{moved: true, event: EventMemberAdded}
	case old == nil:
		return effect{moved: true, event: EventMemberAdded, nodes: nodesJoin}
	case old.Hash == m.Hash && old.Revoked == m.Revoked:
		return effect{} // a repeat: memory's times are exact
	case !old.Revoked && !m.Revoked && old.ChainHash == m.ChainHash:
		// The member rotated its credential (RotateCredential): no
		// answer depends on it. (A chain's new vote changes ChainHash.)
		return effect{}
	case m.Revoked && !old.Revoked:
		return effect{moved: true, event: EventMemberRevoked, nodes: nodesLeave}
	case !m.Revoked && old.Revoked:
		return effect{moved: true, event: EventMemberAdded, nodes: nodesJoin}
	case !m.Revoked:
		return effect{moved: true, event: EventMemberAdded}
	}
	return effect{moved: true} // a revoked member's hash replaced
}

// memberNodeEvents is what a member's change that moves its nodes (move,
// from stepMember) tells of them: each of member's nodes that is live
// (in the answers while its member is admitted) left, or is registered
// again, in its role, so that those who may see it (SightOf) are told.
// Nodes whose lease ran out are in no answer either way: the reaper tells
// their expiry. In node ID order, so that replicas tell alike.
func memberNodeEvents(member string, nodes map[enode.ID]*node, move memberMove, now time.Time) []Event {
	kind := EventLeft
	switch move {
	case nodesStay:
		return nil
	case nodesJoin:
		kind = EventRegistered
	}
	var out []Event
	for _, n := range nodes {
		if n.member == member && n.live(now) {
			out = append(out, Event{Kind: kind, Member: member, Node: n.idHex, Role: string(n.role)})
		}
	}
	slices.SortFunc(out, func(a, b Event) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// sameRecord reports whether two nodes carry the same signed content, role
// and owner: what peer sets and seq checks are made of.
func sameRecord(a, b *node) bool {
	return a.rec.ENR == b.rec.ENR && pubENR(a) == pubENR(b) && a.role == b.role && a.member == b.member
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// changeNode applies change c to node id at now: the transition (stepNode)
// to memory, then its effect: the index moves if an answer may have, and
// the event is told. It returns the node held after (nil: none) and the
// effect. Must be called with mu held for writing.
func (r *Registry) changeNode(id enode.ID, c nodeChange, now time.Time) (*node, effect) {
	n, eff := r.changeNodeOnly(id, c, now)
	if eff.moved {
		r.bump()
	}
	return n, eff
}

// changeNodeOnly is changeNode but for the index, which the caller moves
// (once for many changes, as the reaper does) if the effect says so.
func (r *Registry) changeNodeOnly(id enode.ID, c nodeChange, now time.Time) (*node, effect) {
	old := r.nodes[id]
	next, out, eff := stepNode(old, c, now, r.cfg.Retention)
	held := old
	switch {
	case out == dropNode:
		delete(r.nodes, id)
		held = nil
	case out == holdNext && old != nil:
		*old = next // in place: a renewal allocates nothing
	case out == holdNext:
		held = new(node)
		*held = next
		r.nodes[id] = held
	}
	if eff.left {
		r.event(Event{Kind: EventLeft, Member: old.member, Node: old.idHex, Role: string(noderecord.RolePublic)})
	}
	if eff.event != "" {
		who := held // as it is now; a deleted node as it was
		if who == nil {
			who = old
		}
		// A revoked member's nodes left the others' answers with the
		// revocation (memberNodeEvents): what becomes of them later is
		// told to their member and the administrator only.
		r.event(Event{Kind: eff.event, Member: who.member, Node: who.idHex, Role: string(who.role), unlisted: r.revoked(who.member)})
	}
	return held, eff
}

// settleMember applies a member's change's effect (stepMember): the index
// moves, the event is told, then what the change did to each of its nodes
// (memberNodeEvents). Must be called with mu held for writing, after the
// member in memory is changed.
func (r *Registry) settleMember(name string, eff effect) {
	if eff.moved {
		r.bump()
	}
	if eff.event != "" {
		r.event(Event{Kind: eff.event, Member: name})
	}
	for _, e := range memberNodeEvents(name, r.nodes, eff.nodes, r.cfg.Now()) {
		r.event(e)
	}
}
