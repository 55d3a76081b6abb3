package governance

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
)

// EventKind says what happened to a proposal.
type EventKind string

const (
	EventProposed EventKind = "proposed"
	EventVoted    EventKind = "voted"
	EventPassed   EventKind = "passed"
	EventExpired  EventKind = "expired"
	// EventDropped: the proposal can no longer apply because another one
	// passed first (its member was removed, its key taken).
	EventDropped EventKind = "dropped"
)

// Event is one thing a transaction or an expiry did, for logs, the
// dashboard and CometBFT's event index.
type Event struct {
	Kind   EventKind
	ID     ID
	Action Action
	Member string // who proposed or voted; empty for passed, expired, dropped
	Reason string // why a proposal was dropped
}

// ABCI renders e for an ExecTxResult, indexed by kind, proposal and member
// so `tx_search "governance.proposal='…'"` finds a proposal's history.
func (e Event) ABCI() abci.Event {
	attrs := []abci.EventAttribute{
		{Key: "kind", Value: string(e.Kind), Index: true},
		{Key: "proposal", Value: e.ID.String(), Index: true},
		{Key: "action", Value: e.Action.String()},
	}
	if e.Member != "" {
		attrs = append(attrs, abci.EventAttribute{Key: "member", Value: e.Member, Index: true})
	}
	if e.Reason != "" {
		attrs = append(attrs, abci.EventAttribute{Key: "reason", Value: e.Reason})
	}
	return abci.Event{Type: "governance", Attributes: attrs}
}

// Apply runs one governance transaction at height. On success it returns
// the new state, what happened, and the validator updates of this
// transaction alone (Diff of the two states); on refusal it returns s
// itself and an error wrapping one of the sentinels, and nothing changed.
//
// A proposal counts as its proposer's vote. A proposal passes the moment
// the current members who signed it hold more than 2/3 of the total power;
// its change is applied at once (the updates take effect in CometBFT two
// heights later), and any other pending proposal that the change makes
// impossible is dropped, and any that the new powers make pass, passes.
func Apply(s *State, tx []byte, height uint64) (*State, []Event, []abci.ValidatorUpdate, error) {
	t, err := DecodeTx(tx)
	if err != nil {
		return s, nil, nil, err
	}
	if t.ChainID() != s.ChainID {
		return s, nil, nil, fmt.Errorf("%w: %q, this chain is %q", ErrWrongChain, t.ChainID(), s.ChainID)
	}
	id := t.ProposalID()
	if !t.Signer.VerifySignature(SignBytes(s.ChainID, id), t.Signature) {
		return s, nil, nil, fmt.Errorf("%w: on proposal %s by key %s", ErrBadSignature, id.Short(), shortKey(t.Signer))
	}
	signer, ok := s.MemberByKey(t.Signer)
	if !ok {
		return s, nil, nil, fmt.Errorf("%w: key %s", ErrNotValidator, shortKey(t.Signer))
	}
	n := s.clone()
	var events []Event
	if t.Proposal != nil {
		ev, err := n.propose(t.Proposal, id, signer.Name, height)
		if err != nil {
			return s, nil, nil, err
		}
		events = append(events, ev...)
	} else {
		if err := n.checkOpen(id, height); err != nil {
			return s, nil, nil, err
		}
	}
	if len(events) == 0 { // a vote, or a second signature on the same proposal
		if err := n.vote(id, signer.Name); err != nil {
			return s, nil, nil, err
		}
		p, _ := n.Proposal(id)
		events = append(events, Event{Kind: EventVoted, ID: id, Action: p.Proposal.Action, Member: signer.Name})
	}
	events = append(events, n.settle()...)
	return n, events, Diff(s, n), nil
}

// propose opens p, or returns no events when p is already pending (the
// caller then counts the signature as a vote).
func (n *State) propose(p *Proposal, id ID, proposer string, height uint64) ([]Event, error) {
	if p.Anchor > height {
		return nil, fmt.Errorf("%w: anchor %d, height %d", ErrFutureAnchor, p.Anchor, height)
	}
	expires := satAdd(p.Anchor, n.ProposalTTL)
	if height >= expires {
		return nil, fmt.Errorf("%w: proposal %s expired at height %d", ErrExpired, id.Short(), expires)
	}
	if _, ok := n.closedIndex(id); ok {
		return nil, fmt.Errorf("%w: proposal %s", ErrClosed, id.Short())
	}
	if _, ok := n.pendingIndex(id); ok {
		return nil, nil
	}
	if err := n.checkAction(p.Action); err != nil {
		return nil, err
	}
	var mine uint64
	for _, q := range n.Pending {
		if q.Proposal.Action.equal(p.Action) {
			return nil, fmt.Errorf("%w: %s is proposal %s; vote for it", ErrDuplicate, p.Action, q.ID.Short())
		}
		if q.Proposer == proposer {
			mine++
		}
	}
	if mine >= n.MaxPendingPerMember {
		return nil, fmt.Errorf("%w: %s has %d", ErrTooManyPending, proposer, mine)
	}
	i, _ := n.pendingIndex(id)
	n.Pending = slices.Insert(n.Pending, i, Pending{ID: id, Proposal: *p, Proposer: proposer, Expires: expires})
	if err := n.vote(id, proposer); err != nil {
		return nil, err
	}
	return []Event{{Kind: EventProposed, ID: id, Action: p.Action, Member: proposer}}, nil
}

// checkOpen is whether a vote on id may count at height.
func (n *State) checkOpen(id ID, height uint64) error {
	i, ok := n.pendingIndex(id)
	if !ok {
		if _, closed := n.closedIndex(id); closed {
			return fmt.Errorf("%w: proposal %s", ErrClosed, id.Short())
		}
		return fmt.Errorf("%w: %s", ErrUnknownProposal, id.Short())
	}
	if height >= n.Pending[i].Expires {
		return fmt.Errorf("%w: proposal %s expired at height %d", ErrExpired, id.Short(), n.Pending[i].Expires)
	}
	return nil
}

func (n *State) vote(id ID, member string) error {
	i, _ := n.pendingIndex(id)
	p := &n.Pending[i]
	j, dup := slices.BinarySearch(p.Votes, member)
	if dup {
		return fmt.Errorf("%w: %s on proposal %s", ErrReplayed, member, id.Short())
	}
	p.Votes = slices.Insert(p.Votes, j, member)
	return nil
}

// checkAction is whether a could apply to n now.
func (n *State) checkAction(a Action) error {
	switch a.Kind {
	case ActionAdd:
		if _, ok := n.Member(a.Member); ok {
			return fmt.Errorf("%w: %s", ErrMemberExists, a.Member)
		}
		if m, ok := n.MemberByKey(a.PubKey); ok {
			return fmt.Errorf("%w: by %s", ErrKeyInUse, m.Name)
		}
		if len(n.Members) >= MaxMembers {
			return fmt.Errorf("%w: %d", ErrTooManyMembers, len(n.Members))
		}
	case ActionRemove:
		if _, ok := n.Member(a.Member); !ok {
			return fmt.Errorf("%w: %s", ErrUnknownMember, a.Member)
		}
		if len(n.Members) == 1 {
			return fmt.Errorf("%w: %s", ErrLastMember, a.Member)
		}
	case ActionRotate:
		cur, ok := n.Member(a.Member)
		if !ok {
			return fmt.Errorf("%w: %s", ErrUnknownMember, a.Member)
		}
		if bytes.Equal(cur.PubKey, a.PubKey) {
			return fmt.Errorf("%w: %s", ErrSameKey, a.Member)
		}
		if m, ok := n.MemberByKey(a.PubKey); ok {
			return fmt.Errorf("%w: by %s", ErrKeyInUse, m.Name)
		}
	default:
		return fmt.Errorf("%w: action %d", ErrDecode, a.Kind)
	}
	return nil
}

// applyAction changes the member set; checkAction has passed.
func (n *State) applyAction(a Action) {
	switch a.Kind {
	case ActionAdd:
		i, _ := slices.BinarySearchFunc(n.Members, a.Member, func(m Member, s string) int { return strings.Compare(m.Name, s) })
		n.Members = slices.Insert(n.Members, i, Member{Name: a.Member, PubKey: bytes.Clone(a.PubKey), Power: a.Power, CredHash: bytes.Clone(a.CredHash)})
	case ActionRemove:
		n.Members = slices.DeleteFunc(n.Members, func(m Member) bool { return m.Name == a.Member })
		for i := range n.Pending {
			n.Pending[i].Votes = slices.DeleteFunc(n.Pending[i].Votes, func(v string) bool { return v == a.Member })
		}
	case ActionRotate:
		for i := range n.Members {
			if n.Members[i].Name == a.Member {
				n.Members[i].PubKey = bytes.Clone(a.PubKey)
			}
		}
	}
}

// settle passes every pending proposal over the threshold, in ID order,
// and drops those a passed change made impossible, until nothing moves. A
// pass changes the powers (and a removal the votes), so one pass can make
// another: all of it happens in the transaction that tipped the first.
func (n *State) settle() []Event {
	var events []Event
	for changed := true; changed; {
		changed = false
		need := Needed(n.TotalPower())
		for i, p := range n.Pending {
			if n.Tally(p.Votes) < need {
				continue
			}
			n.close(i)
			if err := n.checkAction(p.Proposal.Action); err != nil {
				// Unreachable while impossible proposals are dropped
				// below; kept so a pass can never apply a bad change.
				events = append(events, Event{Kind: EventDropped, ID: p.ID, Action: p.Proposal.Action, Reason: err.Error()})
			} else {
				n.applyAction(p.Proposal.Action)
				events = append(events, Event{Kind: EventPassed, ID: p.ID, Action: p.Proposal.Action})
				events = append(events, n.dropImpossible()...)
			}
			changed = true
			break
		}
	}
	return events
}

// dropImpossible closes the pending proposals that can no longer apply.
func (n *State) dropImpossible() []Event {
	var events []Event
	for i := 0; i < len(n.Pending); {
		p := n.Pending[i]
		if err := n.checkAction(p.Proposal.Action); err != nil {
			n.close(i)
			events = append(events, Event{Kind: EventDropped, ID: p.ID, Action: p.Proposal.Action, Reason: err.Error()})
			continue
		}
		i++
	}
	return events
}

// close moves Pending[i] to Closed.
func (n *State) close(i int) {
	p := n.Pending[i]
	n.Pending = slices.Delete(n.Pending, i, i+1)
	j, _ := n.closedIndex(p.ID)
	n.Closed = slices.Insert(n.Closed, j, Closed{ID: p.ID, Expires: p.Expires})
}

// Expire drops the proposals whose last height is before height, and
// forgets decided ones whose signed bytes can no longer be valid. The app
// calls it at the start of every FinalizeBlock, before Apply; it returns s
// itself when nothing expired, so an unchanged state costs nothing.
func Expire(s *State, height uint64) (*State, []Event) {
	var events []Event
	for _, p := range s.Pending {
		if p.Expires <= height {
			events = append(events, Event{Kind: EventExpired, ID: p.ID, Action: p.Proposal.Action})
		}
	}
	stale := slices.ContainsFunc(s.Closed, func(c Closed) bool { return c.Expires <= height })
	if len(events) == 0 && !stale {
		return s, nil
	}
	n := s.clone()
	n.Pending = slices.DeleteFunc(n.Pending, func(p Pending) bool { return p.Expires <= height })
	n.Closed = slices.DeleteFunc(n.Closed, func(c Closed) bool { return c.Expires <= height })
	return n, events
}

func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// Height converts an ABCI height (int64, never negative on a valid chain).
func Height(h int64) uint64 {
	if h < 0 {
		return 0
	}
	return uint64(h)
}
