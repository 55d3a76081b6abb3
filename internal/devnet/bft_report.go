package devnet

import (
	"github.com/consortium/consortium/internal/consensus"
	"github.com/consortium/consortium/internal/registry"
)

// reportingNode is a consensus node as the agent sees it: it also reports
// the node's view of the chain with each renewal (agent.ConsensusReporter),
// which the dashboard's consensus panel shows. It is what `consortium agent
// run --consensus-home` does (cmd/consortium/agent_consensus.go), with the
// validators named from consortium.json instead of the CometBFT genesis.
type reportingNode struct {
	*consensus.Node
	names map[string]string // validator address (upper-case hex) -> member
}

// Report implements agent.ConsensusReporter.
func (r reportingNode) Report() *registry.ConsensusStatus {
	s := r.Status()
	if s.Height == 0 {
		return nil
	}
	cs := &registry.ConsensusStatus{
		Height: s.Height, Round: s.Round, Proposer: s.BlockProposer,
		Validator: s.ValidatorAddress, BlockMillis: s.BlockInterval.Milliseconds(),
	}
	add := func(addrs []string, signed bool) {
		for _, a := range addrs {
			if len(cs.Validators) < registry.MaxValidators {
				cs.Validators = append(cs.Validators, registry.ValidatorVote{Address: a, Name: r.names[a], Power: s.Powers[a], Signed: signed})
			}
		}
	}
	add(s.Signers, true)
	add(s.Absent, false)
	return cs
}
