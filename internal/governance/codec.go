package governance

import (
	"bytes"
	"crypto/sha256"
	"fmt"

	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/ethereum/go-ethereum/rlp"
)

// stateVersion is the first field of an encoded State.
const stateVersion = 1

// Hash domains, so a state hash cannot be confused with a transaction's
// or a block's.
const (
	stateDomain   = "consortium governance state v1\n"
	appHashDomain = "consortium app hash v1\n"
)

// maxStateBytes bounds Unmarshal: MaxMembers members and their bounded
// proposals are well under it.
const maxStateBytes = 64 << 20

type wireState struct {
	Version             uint8
	ChainID             string
	ProposalTTL         uint64
	MaxPendingPerMember uint64
	Members             []wireMember
	Pending             []wirePending
	Closed              []wireClosed
}

type wireMember struct {
	Name     string
	PubKey   []byte
	Power    uint64
	CredHash []byte `rlp:"optional"` // absent for members without one: old states keep their bytes
}

type wirePending struct {
	ID       []byte
	Proposal wireProposal
	Proposer string
	Expires  uint64
	Votes    []string
}

type wireClosed struct {
	ID      []byte
	Expires uint64
}

// Marshal is the state's one canonical encoding (RLP, like the payload and
// the transactions): equal states are equal bytes on every node, so Hash
// can be folded into the app hash and the bytes persisted as they are.
func (s *State) Marshal() []byte {
	w := wireState{Version: stateVersion, ChainID: s.ChainID, ProposalTTL: s.ProposalTTL,
		MaxPendingPerMember: s.MaxPendingPerMember,
		Members:             []wireMember{}, Pending: []wirePending{}, Closed: []wireClosed{}}
	for _, m := range s.Members {
		w.Members = append(w.Members, wireMember{Name: m.Name, PubKey: []byte(m.PubKey), Power: uint64(m.Power), CredHash: m.CredHash})
	}
	for _, p := range s.Pending {
		votes := p.Votes
		if votes == nil {
			votes = []string{}
		}
		w.Pending = append(w.Pending, wirePending{ID: bytes.Clone(p.ID[:]), Proposal: *p.Proposal.wire(),
			Proposer: p.Proposer, Expires: p.Expires, Votes: votes})
	}
	for _, c := range s.Closed {
		w.Closed = append(w.Closed, wireClosed{ID: bytes.Clone(c.ID[:]), Expires: c.Expires})
	}
	enc, err := rlp.EncodeToBytes(&w)
	if err != nil {
		panic(err) // only strings, bytes, integers and lists of them
	}
	return enc
}

// Unmarshal reads what Marshal wrote and checks every invariant Apply
// relies on: a persisted state that was damaged or written by something
// else is refused, never run.
func Unmarshal(b []byte) (*State, error) {
	if len(b) > maxStateBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrState, len(b))
	}
	var w wireState
	if err := rlp.DecodeBytes(b, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	if w.Version != stateVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrState, w.Version, stateVersion)
	}
	s := &State{ChainID: w.ChainID, ProposalTTL: w.ProposalTTL, MaxPendingPerMember: w.MaxPendingPerMember}
	if err := checkChainID(s.ChainID); err != nil || s.ProposalTTL == 0 || s.MaxPendingPerMember == 0 {
		return nil, fmt.Errorf("%w: chain ID %q, TTL %d, max pending %d", ErrState, s.ChainID, s.ProposalTTL, s.MaxPendingPerMember)
	}
	for _, m := range w.Members {
		if m.Power > uint64(MaxPower) {
			return nil, fmt.Errorf("%w: member %q power %d", ErrState, m.Name, m.Power)
		}
		mem := Member{Name: m.Name, PubKey: ed25519.PubKey(bytes.Clone(m.PubKey)), Power: int64(m.Power)}
		if len(m.CredHash) > 0 {
			mem.CredHash = bytes.Clone(m.CredHash)
		}
		s.Members = append(s.Members, mem)
	}
	if err := s.checkMembers(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrState, err)
	}
	for i, wp := range w.Pending {
		p, err := s.readPending(wp)
		if err != nil {
			return nil, fmt.Errorf("%w: pending %d: %v", ErrState, i, err)
		}
		if i > 0 && bytes.Compare(s.Pending[i-1].ID[:], p.ID[:]) >= 0 {
			return nil, fmt.Errorf("%w: pending out of order", ErrState)
		}
		s.Pending = append(s.Pending, p)
	}
	for i, c := range w.Closed {
		if len(c.ID) != len(ID{}) || (i > 0 && bytes.Compare(w.Closed[i-1].ID, c.ID) >= 0) {
			return nil, fmt.Errorf("%w: closed %d", ErrState, i)
		}
		s.Closed = append(s.Closed, Closed{ID: ID(c.ID), Expires: c.Expires})
	}
	if !bytes.Equal(s.Marshal(), b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrState)
	}
	return s, nil
}

func (s *State) readPending(wp wirePending) (Pending, error) {
	prop := wp.Proposal.proposal()
	if err := prop.check(); err != nil {
		return Pending{}, err
	}
	if len(wp.ID) != len(ID{}) || ID(wp.ID) != prop.ID() {
		return Pending{}, fmt.Errorf("ID does not match the proposal")
	}
	if prop.ChainID != s.ChainID || wp.Expires != satAdd(prop.Anchor, s.ProposalTTL) {
		return Pending{}, fmt.Errorf("chain ID or expiry does not match")
	}
	for j, v := range wp.Votes {
		if _, ok := s.Member(v); !ok || (j > 0 && wp.Votes[j-1] >= v) {
			return Pending{}, fmt.Errorf("vote %q: not a member, repeated or out of order", v)
		}
	}
	return Pending{ID: ID(wp.ID), Proposal: *prop, Proposer: wp.Proposer, Expires: wp.Expires, Votes: wp.Votes}, nil
}

// Hash is SHA-256 of the domain and Marshal: the governance part of the
// app hash.
func (s *State) Hash() [32]byte {
	return sha256.Sum256(append([]byte(stateDomain), s.Marshal()...))
}

// AppHash folds the governance state into the consensus app's own hash
// (the EL block hash): SHA-256 of a domain, el and s.Hash(). Two nodes
// that agree on the EL block but not on who the members are disagree on
// the app hash, so CometBFT stops them at once instead of letting their
// validator sets drift apart.
func AppHash(el []byte, s *State) []byte {
	h := s.Hash()
	sum := sha256.Sum256(append(append([]byte(appHashDomain), el...), h[:]...))
	return sum[:]
}
