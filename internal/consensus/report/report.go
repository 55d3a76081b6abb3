// Package report turns a consensus node's view of the chain into the
// status the agent sends with each renewal (registry.ConsensusStatus), which
// the dashboard's consensus panel shows. It stands apart from package
// consensus so that the consensus layer does not depend on the registrar's
// types, and so that `consortium agent run` and the devnet share it.
package report

import (
	"path/filepath"
	"strings"

	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/consortium/consortium/internal/consensus"
	"github.com/consortium/consortium/internal/registry"
)

// Node is a consensus node that also reports its view (it implements
// agent.ConsensusReporter). Names maps validator addresses (upper-case hex)
// to the names shown for them: their members.
type Node struct {
	*consensus.Node
	Names map[string]string
}

// GenesisNames reads the validators' names from the CometBFT genesis in
// home (consortium init names each member's validator after the member);
// an unreadable genesis gives no names, never an error: names are only
// for people.
func GenesisNames(home string) map[string]string {
	names := map[string]string{}
	doc, err := cmttypes.GenesisDocFromFile(filepath.Join(home, "config", "genesis.json"))
	if err != nil {
		return names
	}
	for _, v := range doc.Validators {
		names[strings.ToUpper(v.Address.String())] = v.Name
	}
	return names
}

// Report implements agent.ConsensusReporter: nil until the first block.
// Validators are named from the members' governance state first (it names
// those voted in after the genesis), then from Names.
func (n Node) Report() *registry.ConsensusStatus {
	names := n.Names
	if gov := n.MemberNames(); len(gov) > 0 {
		names = make(map[string]string, len(n.Names)+len(gov))
		for a, name := range n.Names {
			names[a] = name
		}
		for a, name := range gov {
			names[a] = name
		}
	}
	return Status(n.Status(), names)
}

// Status converts a consensus.Status, naming validators by names.
func Status(s consensus.Status, names map[string]string) *registry.ConsensusStatus {
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
				cs.Validators = append(cs.Validators, registry.ValidatorVote{Address: a, Name: names[a], Power: s.Powers[a], Signed: signed})
			}
		}
	}
	add(s.Signers, true)
	add(s.Absent, false)
	return cs
}
