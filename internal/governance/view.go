package governance

import (
	"errors"
	"slices"

	"github.com/cometbft/cometbft/crypto/ed25519"
)

// View is the validator set and its open proposals as an operator reads
// them before voting: who has signed, who is missing, and what each
// change would do to the fault tolerance given the validators offline
// now. The dashboard shows it; it is JSON as is.
type View struct {
	Height     uint64 `json:"height"`
	Validators int    `json:"validators"`
	Total      int64  `json:"total_power"`
	// Needed is the power a proposal's votes must reach to pass.
	Needed    int64  `json:"needed_power"`
	Tolerates int    `json:"tolerates"`
	Summary   string `json:"summary"` // e.g. "4 validators, tolerates 1 (c offline)"
	// Offline are the members whose validators did not sign the last
	// commit the caller saw.
	Offline   []string       `json:"offline"`
	Proposals []ProposalView `json:"proposals"`
}

// ProposalView is one open proposal.
type ProposalView struct {
	ID       string   `json:"id"`
	Short    string   `json:"short"`
	Kind     string   `json:"kind"`
	Member   string   `json:"member"`
	Action   string   `json:"action"`
	Proposer string   `json:"proposer"`
	Votes    []string `json:"votes"`
	Missing  []string `json:"missing"`
	Power    int64    `json:"power"` // of the votes so far
	Expires  uint64   `json:"expires"`
	// Before and After are the fault tolerance now and once the change
	// takes effect (the FaultTolerance lines the CLI prints).
	Before string `json:"before"`
	After  string `json:"after,omitempty"`
	// Halts says why the change would stop the chain given who is offline
	// now (the 1 → 2 trap); the CLI refuses to send such a vote unless
	// forced.
	Halts string `json:"halts,omitempty"`
	// Refused is why the state would refuse the change now (e.g. the
	// member it removes is gone).
	Refused string `json:"refused,omitempty"`
}

// NewView describes s at height, offline being the validator keys that
// did not sign the last commit (Offline). As in `member proposals`, a key
// a proposal adds or rotates to counts as offline: it cannot have signed
// a block before it is in the set.
func NewView(s *State, height uint64, offline []ed25519.PubKey) View {
	now := faultTolerance(s, offline)
	v := View{
		Height: height, Validators: now.Validators, Total: now.Total, Needed: Needed(now.Total),
		Tolerates: now.Tolerates, Summary: now.String(), Offline: nonNil(now.Offline),
		Proposals: make([]ProposalView, 0, len(s.Pending)),
	}
	for _, p := range s.Pending {
		a := p.Proposal.Action
		pv := ProposalView{
			ID: p.ID.String(), Short: p.ID.Short(), Kind: a.Kind.String(), Member: a.Member,
			Action: a.String(), Proposer: p.Proposer, Votes: nonNil(slices.Clone(p.Votes)),
			Missing: []string{}, Power: s.Tally(p.Votes), Expires: p.Expires,
		}
		for _, m := range s.Members {
			if !slices.Contains(p.Votes, m.Name) {
				pv.Missing = append(pv.Missing, m.Name)
			}
		}
		off := offline
		if len(a.PubKey) > 0 {
			off = append(slices.Clone(offline), a.PubKey)
		}
		before, after, err := Preview(s, p.Proposal, off)
		pv.Before = before.String()
		var halt *HaltError
		switch {
		case errors.As(err, &halt):
			pv.After, pv.Halts = after.String(), err.Error()
		case err != nil:
			pv.Refused = err.Error()
		default:
			pv.After = after.String()
		}
		v.Proposals = append(v.Proposals, pv)
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
