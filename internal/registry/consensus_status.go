package registry

import (
	"fmt"
	"strings"
)

// ConsensusStatus is what a node's consensus process (CometBFT) reports
// with its renewal: where the chain stands as that node sees it. Like the
// rest of Status it is self-reported; the dashboard says so.
type ConsensusStatus struct {
	// Height is the last final (committed) height, Round the round of the
	// height in progress.
	Height int64 `json:"height"`
	Round  int32 `json:"round"`
	// Proposer is the validator address (40 hex characters) that proposed
	// the block at Height.
	Proposer string `json:"proposer,omitempty"`
	// Validator is this node's own validator address; empty on a full node.
	Validator string `json:"validator,omitempty"`
	// Validators is the validator set, each with whether its signature is
	// in the last commit.
	Validators []ValidatorVote `json:"validators,omitempty"`
	// BlockMillis is the time between the last two final blocks.
	BlockMillis int64 `json:"block_ms,omitempty"`
}

// ValidatorVote is one validator of the set and its part in the last commit.
type ValidatorVote struct {
	Address string `json:"address"`
	// Name is the validator's name in the chain's genesis or the change that
	// added it: its member's name.
	Name   string `json:"name,omitempty"`
	Power  int64  `json:"power"`
	Signed bool   `json:"signed"`
}

// MaxValidators bounds ConsensusStatus.Validators.
const MaxValidators = 256

func (c *ConsensusStatus) validate() error {
	if c == nil {
		return nil
	}
	if c.Height < 0 || c.Round < 0 || c.BlockMillis < 0 {
		return fmt.Errorf("%w: status.consensus: negative number", ErrInvalid)
	}
	if len(c.Validators) > MaxValidators {
		return fmt.Errorf("%w: status.consensus.validators has more than %d entries", ErrInvalid, MaxValidators)
	}
	addrs := []string{c.Proposer, c.Validator}
	for _, v := range c.Validators {
		if v.Address == "" || len(v.Name) > 64 || v.Power < 0 {
			return fmt.Errorf("%w: status.consensus.validators: an entry needs an address, a name of at most 64 characters and a power >= 0", ErrInvalid)
		}
		addrs = append(addrs, v.Address)
	}
	for _, a := range addrs {
		if a != "" && !validatorAddr(a) {
			return fmt.Errorf("%w: status.consensus addresses must be 40 hex characters", ErrInvalid)
		}
	}
	return nil
}

// validatorAddr reports whether a is a CometBFT validator address: 20 bytes
// in upper- or lower-case hex.
func validatorAddr(a string) bool {
	if len(a) != 40 {
		return false
	}
	return strings.Trim(strings.ToLower(a), "0123456789abcdef") == ""
}
