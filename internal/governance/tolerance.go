package governance

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/cometbft/cometbft/crypto/ed25519"
)

// Tolerance is how many validators the set can lose, largest first, and
// still have validators holding more than 2/3 of the power to sign blocks.
// Largest first because the question an operator asks is "what is the
// worst loss we survive": 4 equal validators tolerate 1, 3 tolerate 0, and
// one validator with half the power cannot be lost at all.
func Tolerance(powers []int64) int {
	sorted := slices.Clone(powers)
	slices.Sort(sorted)
	slices.Reverse(sorted)
	var total int64
	for _, p := range sorted {
		total += p
	}
	need := Needed(total)
	left, n := total, 0
	for _, p := range sorted {
		if left-p < need {
			break
		}
		left -= p
		n++
	}
	return n
}

// FaultTolerance describes one validator set for the preview.
type FaultTolerance struct {
	Validators int
	Total      int64 // total power
	Tolerates  int   // Tolerance of the set
	// Offline are the members whose keys the caller listed as offline,
	// sorted; OnlinePower is what the others hold.
	Offline     []string
	OnlinePower int64
}

// String is the line the CLI and the dashboard show, e.g. "4 validators,
// tolerates 1"; the preview prints before and after joined by " → ".
func (f FaultTolerance) String() string {
	noun := "validators"
	if f.Validators == 1 {
		noun = "validator"
	}
	s := fmt.Sprintf("%d %s, tolerates %d", f.Validators, noun, f.Tolerates)
	if len(f.Offline) > 0 {
		s += fmt.Sprintf(" (%s offline)", joinNames(f.Offline))
	}
	return s
}

func faultTolerance(s *State, offline []ed25519.PubKey) FaultTolerance {
	f := FaultTolerance{Validators: len(s.Members), Total: s.TotalPower()}
	powers := make([]int64, 0, len(s.Members))
	f.OnlinePower = f.Total
	for _, m := range s.Members {
		powers = append(powers, m.Power)
		if slices.ContainsFunc(offline, func(k ed25519.PubKey) bool { return bytes.Equal(k, m.PubKey) }) {
			f.Offline = append(f.Offline, m.Name)
			f.OnlinePower -= m.Power
		}
	}
	f.Tolerates = Tolerance(powers)
	return f
}

// Preview shows what proposal p would do to the chain's fault tolerance,
// given the validator keys now offline (the CLI and the dashboard take
// them from the last commit's absent signatures). It returns the set
// before and after, and a *HaltError (ErrWouldHalt) when, after the
// change, the validators not offline would hold 2/3 of the power or less:
// the chain would stop making blocks until someone came back, the trap of
// growing from 1 validator to 2 while the second is not yet running. The
// caller refuses such a change unless the operator forces it.
//
// An added or rotated-to key counts as online unless it is in offline. A
// new validator cannot sign before it is in the set, so the CLI should
// list the new key as offline unless the operator says its node is up.
// A proposal the state would refuse returns that error instead.
func Preview(s *State, p Proposal, offline []ed25519.PubKey) (before, after FaultTolerance, err error) {
	before = faultTolerance(s, offline)
	if err := p.check(); err != nil {
		return before, FaultTolerance{}, err
	}
	if err := s.checkAction(p.Action); err != nil {
		return before, FaultTolerance{}, err
	}
	n := s.clone()
	n.applyAction(p.Action)
	after = faultTolerance(n, offline)
	if need := Needed(after.Total); after.OnlinePower < need {
		return before, after, &HaltError{
			Change: p.Action.gerund(), Validators: after.Validators, Total: after.Total,
			Need: need, Online: after.OnlinePower, Offline: after.Offline, Equal: equalPowers(n),
		}
	}
	return before, after, nil
}

func equalPowers(s *State) bool {
	for _, m := range s.Members {
		if m.Power != s.Members[0].Power {
			return false
		}
	}
	return true
}

// Offline lists the keys of the members whose validator address is not
// among signers: what Preview wants, from what CometBFT shows. A commit
// (RPC /commit, or FinalizeBlock's DecidedLastCommit) names validators by
// address, and a validator that did not sign the last block is the best
// evidence there is that it is down.
func Offline(s *State, signers [][]byte) []ed25519.PubKey {
	var out []ed25519.PubKey
	for _, m := range s.Members {
		addr := m.PubKey.Address()
		if !slices.ContainsFunc(signers, func(a []byte) bool { return bytes.Equal(a, addr) }) {
			out = append(out, m.PubKey)
		}
	}
	return out
}
