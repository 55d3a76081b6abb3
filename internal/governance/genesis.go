package governance

import (
	"bytes"
	"fmt"
	"slices"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"
)

// MembersFromGenesis reads the first members from the CometBFT genesis
// validators: consortium init writes one per member, named after it.
// InitChain's request carries only keys and powers, so the names must come
// from the genesis document the node was started with.
func MembersFromGenesis(vals []cmttypes.GenesisValidator) ([]Member, error) {
	var out []Member
	for i, v := range vals {
		k, ok := v.PubKey.(ed25519.PubKey)
		if !ok {
			return nil, fmt.Errorf("%w: validator %d (%q) has no ed25519 key", ErrGenesis, i, v.Name)
		}
		out = append(out, Member{Name: v.Name, PubKey: bytes.Clone(k), Power: v.Power})
	}
	return out, nil
}

// CheckValidators is InitChain's check that CometBFT's genesis set (the
// request's validators) is exactly the members' set: a node whose
// governance state disagreed with its consensus engine from height 0
// would refuse blocks the others accept.
func CheckValidators(s *State, vals []abci.ValidatorUpdate) error {
	want := s.Validators()
	got := slices.Clone(vals)
	byKey := func(a, b abci.ValidatorUpdate) int { return bytes.Compare(a.PubKeyBytes, b.PubKeyBytes) }
	slices.SortFunc(want, byKey)
	slices.SortFunc(got, byKey)
	if len(got) != len(want) {
		return fmt.Errorf("%w: CometBFT has %d validators, the members %d", ErrGenesis, len(got), len(want))
	}
	for i := range want {
		if got[i].PubKeyType != ed25519.KeyType || !bytes.Equal(got[i].PubKeyBytes, want[i].PubKeyBytes) || got[i].Power != want[i].Power {
			return fmt.Errorf("%w: CometBFT validator %x (power %d) is not a member's", ErrGenesis, got[i].PubKeyBytes, got[i].Power)
		}
	}
	return nil
}
