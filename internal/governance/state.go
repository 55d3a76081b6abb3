package governance

import (
	"bytes"
	"fmt"
	"slices"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/ed25519"
)

// Config holds the rules every node must share. They are copied into the
// State at genesis (and so into its hash): a node configured differently
// would otherwise expire proposals at other heights and fork the app hash.
type Config struct {
	// ProposalTTL is how many blocks a proposal stays open after its
	// anchor height. Default 86400: a day at one block a second, time for
	// companies to get a change signed off, short enough that a forgotten
	// proposal does not pass by surprise a month later.
	ProposalTTL uint64
	// MaxPendingPerMember bounds the open proposals one member may have,
	// so no member can make every node store an unbounded list. Default 8.
	MaxPendingPerMember uint64
}

// DefaultConfig is Config with every default filled in.
func DefaultConfig() Config { return Config{}.withDefaults() }

func (c Config) withDefaults() Config {
	if c.ProposalTTL == 0 {
		c.ProposalTTL = 86400
	}
	if c.MaxPendingPerMember == 0 {
		c.MaxPendingPerMember = 8
	}
	return c
}

// Member is one organisation and its validator. CredHash is the hash of
// its registrar credential when the add proposal that made it a member
// carried one (Action.CredHash); genesis members have none, the registrar
// knows them from `consortium init`'s seed.
type Member struct {
	Name     string
	PubKey   ed25519.PubKey
	Power    int64
	CredHash []byte
}

// Pending is an open proposal and who has signed it so far.
type Pending struct {
	ID       ID
	Proposal Proposal
	Proposer string
	// Expires is the first height at which the proposal no longer counts
	// (Anchor + ProposalTTL).
	Expires uint64
	// Votes are member names, sorted. A member that leaves is taken out
	// of every vote list, so a later member of the same name starts fresh.
	Votes []string
}

// Closed remembers a decided proposal until the height its signed bytes
// expire, so the same proposal cannot be replayed into a second change
// (add d, remove d, then replay "add d"). After that the anchor refuses it.
type Closed struct {
	ID      ID
	Expires uint64
}

// State is the governance state: the validator set by member, and the
// proposals in flight. A State is a value: Apply and Expire return a new
// one and never modify their argument, so the app can keep the state of the
// last commit for CheckTx beside the one FinalizeBlock is building. Treat
// the slices as read-only.
type State struct {
	ChainID             string
	ProposalTTL         uint64
	MaxPendingPerMember uint64
	Members             []Member  // sorted by name; names and keys unique
	Pending             []Pending // sorted by ID
	Closed              []Closed  // sorted by ID
}

// NewState is the genesis state: the chain's first validators, one per
// member, and the rules in cfg.
func NewState(chainID string, members []Member, cfg Config) (*State, error) {
	cfg = cfg.withDefaults()
	if err := checkChainID(chainID); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGenesis, err)
	}
	s := &State{ChainID: chainID, ProposalTTL: cfg.ProposalTTL, MaxPendingPerMember: cfg.MaxPendingPerMember}
	for _, m := range members {
		s.Members = append(s.Members, Member{Name: m.Name, PubKey: bytes.Clone(m.PubKey), Power: m.Power, CredHash: bytes.Clone(m.CredHash)})
	}
	slices.SortFunc(s.Members, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	if err := s.checkMembers(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGenesis, err)
	}
	return s, nil
}

// checkMembers holds the member invariants: a non-empty set of valid,
// unique names and keys with powers in range, sorted by name.
func (s *State) checkMembers() error {
	if len(s.Members) == 0 || len(s.Members) > MaxMembers {
		return fmt.Errorf("%w: %d members, want 1..%d", ErrTooManyMembers, len(s.Members), MaxMembers)
	}
	keys := map[string]bool{}
	for i, m := range s.Members {
		a := Action{Kind: ActionAdd, Member: m.Name, PubKey: m.PubKey, Power: m.Power, CredHash: m.CredHash}
		if err := a.check(); err != nil {
			return fmt.Errorf("member %q: %w", m.Name, err)
		}
		if i > 0 && s.Members[i-1].Name >= m.Name {
			return fmt.Errorf("%w: %q twice or out of order", ErrMemberExists, m.Name)
		}
		if keys[string(m.PubKey)] {
			return fmt.Errorf("%w: member %q", ErrKeyInUse, m.Name)
		}
		keys[string(m.PubKey)] = true
	}
	return nil
}

// Member returns the member called name.
func (s *State) Member(name string) (Member, bool) {
	i, ok := slices.BinarySearchFunc(s.Members, name, func(m Member, n string) int { return strings.Compare(m.Name, n) })
	if !ok {
		return Member{}, false
	}
	return s.Members[i], true
}

// MemberByKey returns the member whose validator key is k.
func (s *State) MemberByKey(k ed25519.PubKey) (Member, bool) {
	for _, m := range s.Members {
		if bytes.Equal(m.PubKey, k) {
			return m, true
		}
	}
	return Member{}, false
}

// TotalPower is the sum of the members' powers. MaxPower × MaxMembers is
// far below what int64 holds, even tripled.
func (s *State) TotalPower() int64 {
	var t int64
	for _, m := range s.Members {
		t += m.Power
	}
	return t
}

// Needed is the least power that is more than 2/3 of total: what must sign
// a block, and a proposal.
func Needed(total int64) int64 { return total*2/3 + 1 }

// Tally is the power of the current members among names.
func (s *State) Tally(names []string) int64 {
	var t int64
	for _, n := range names {
		if m, ok := s.Member(n); ok {
			t += m.Power
		}
	}
	return t
}

// Validators is the set as CometBFT knows it, sorted by member name; InitChain
// compares it with the genesis validators (CheckValidators).
func (s *State) Validators() []abci.ValidatorUpdate {
	out := make([]abci.ValidatorUpdate, 0, len(s.Members))
	for _, m := range s.Members {
		out = append(out, abci.NewValidatorUpdate(m.PubKey, m.Power))
	}
	return out
}

// Proposal returns the pending proposal id.
func (s *State) Proposal(id ID) (Pending, bool) {
	i, ok := s.pendingIndex(id)
	if !ok {
		return Pending{}, false
	}
	return s.Pending[i], true
}

// Find returns the pending proposal whose hex ID starts with prefix, so
// the CLI can take the 8 digits it shows.
func (s *State) Find(prefix string) (Pending, error) {
	prefix = strings.ToLower(strings.TrimPrefix(prefix, "0x"))
	var found []Pending
	for _, p := range s.Pending {
		if prefix != "" && strings.HasPrefix(p.ID.String(), prefix) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return Pending{}, fmt.Errorf("%w: %q", ErrUnknownProposal, prefix)
	case 1:
		return found[0], nil
	}
	return Pending{}, fmt.Errorf("%w: %q matches %d proposals", ErrAmbiguous, prefix, len(found))
}

func (s *State) pendingIndex(id ID) (int, bool) {
	return slices.BinarySearchFunc(s.Pending, id, func(p Pending, id ID) int { return bytes.Compare(p.ID[:], id[:]) })
}

func (s *State) closedIndex(id ID) (int, bool) {
	return slices.BinarySearchFunc(s.Closed, id, func(c Closed, id ID) int { return bytes.Compare(c.ID[:], id[:]) })
}

// clone is a deep copy, so Apply can change it and return it while the
// caller's state stays as it was.
func (s *State) clone() *State {
	n := *s
	n.Members = slices.Clone(s.Members)
	n.Pending = make([]Pending, len(s.Pending))
	for i, p := range s.Pending {
		p.Votes = slices.Clone(p.Votes)
		n.Pending[i] = p
	}
	n.Closed = slices.Clone(s.Closed)
	return &n
}

// Diff is the CometBFT validator updates that take before's set to
// after's: power 0 for a key that left, the new power for a key that came
// or changed. Sorted by key, one entry per key: CometBFT refuses a block
// whose updates name a key twice, so the app should return
// Diff(state at block start, state at block end) rather than concatenate
// the updates of each transaction.
func Diff(before, after *State) []abci.ValidatorUpdate {
	old := map[string]int64{}
	for _, m := range before.Members {
		old[string(m.PubKey)] = m.Power
	}
	var out []abci.ValidatorUpdate
	for _, m := range after.Members {
		if p, ok := old[string(m.PubKey)]; !ok || p != m.Power {
			out = append(out, abci.NewValidatorUpdate(m.PubKey, m.Power))
		}
		delete(old, string(m.PubKey))
	}
	for k := range old {
		out = append(out, abci.NewValidatorUpdate(ed25519.PubKey(k), 0))
	}
	slices.SortFunc(out, func(a, b abci.ValidatorUpdate) int { return bytes.Compare(a.PubKeyBytes, b.PubKeyBytes) })
	return out
}
