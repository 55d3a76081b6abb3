package dashboard

import (
	"encoding/hex"
	"sort"
	"strings"

	"github.com/consortium/consortium/internal/governance"
	"github.com/consortium/consortium/internal/registry"
)

// Chain is the consensus panel of a BFT consortium: the chain as the most
// advanced live node the viewer may see reports it. It is self-reported
// (SelfReported is always true, so the page says so): a node's consensus
// process tells its agent, the agent tells the registrar with its renewal.
type Chain struct {
	Height int64 `json:"height"`
	Round  int32 `json:"round"`
	// Proposer is the validator address that proposed the block at Height;
	// ProposerName its member, by the validator's name in the chain.
	Proposer     string `json:"proposer,omitempty"`
	ProposerName string `json:"proposer_name,omitempty"`
	// BlockMillis is the time between the last two final blocks.
	BlockMillis int64 `json:"block_ms,omitempty"`
	// Validators is the set, each with whether it signed the last commit;
	// Signed counts those that did.
	Validators []registry.ValidatorVote `json:"validators"`
	Signed     int                      `json:"signed"`
	// Tolerates is how many validators may be lost, the largest first,
	// with more than 2/3 of the power left: the chain keeps finalising.
	Tolerates int `json:"tolerates"`
	// Reporter and ReporterMember name the node whose report this is.
	Reporter       string `json:"reporter"`
	ReporterMember string `json:"reporter_member"`
	SelfReported   bool   `json:"self_reported"`
	// Governance is the validator set and its open proposals as the chain
	// itself holds them (the registrar's --chain-rpc follower: what a
	// majority of the endpoints agree on), with each change's fault
	// tolerance before and after given who did not sign the last commit
	// above. Absent when the registrar does not follow the chain.
	Governance *governance.View `json:"governance,omitempty"`
}

// withGovernance adds the view of s to c, taking the validators offline
// from c's last commit.
func (c *Chain) withGovernance(s *governance.State, height uint64) {
	if c == nil || s == nil {
		return
	}
	var signers [][]byte
	for _, v := range c.Validators {
		if a, err := hex.DecodeString(v.Address); err == nil && v.Signed {
			signers = append(signers, a)
		}
	}
	v := governance.NewView(s, height, governance.Offline(s, signers))
	c.Governance = &v
}

// chainOf picks the live node with the highest consensus height (a
// validator's report before a full node's at the same height, then the
// lowest ID, so the choice is stable) and summarises its report; nil when
// no visible node runs a consensus process.
func chainOf(nodes []Node) *Chain {
	var best *Node
	better := func(n, b *Node) bool {
		if n.Consensus.Height != b.Consensus.Height {
			return n.Consensus.Height > b.Consensus.Height
		}
		if nv, bv := n.Consensus.Validator != "", b.Consensus.Validator != ""; nv != bv {
			return nv
		}
		return n.ID < b.ID
	}
	for i := range nodes {
		n := &nodes[i]
		if !n.Live || n.Consensus == nil {
			continue
		}
		if best == nil || better(n, best) {
			best = n
		}
	}
	if best == nil {
		return nil
	}
	c := best.Consensus
	ch := &Chain{
		Height: c.Height, Round: c.Round, Proposer: strings.ToUpper(c.Proposer), BlockMillis: c.BlockMillis,
		Validators: make([]registry.ValidatorVote, len(c.Validators)), Reporter: best.ID,
		ReporterMember: best.Member, SelfReported: true,
	}
	copy(ch.Validators, c.Validators)
	powers := make([]int64, 0, len(c.Validators))
	for i := range ch.Validators {
		v := &ch.Validators[i]
		v.Address = strings.ToUpper(v.Address)
		if v.Signed {
			ch.Signed++
		}
		if v.Address == ch.Proposer {
			ch.ProposerName = v.Name
		}
		powers = append(powers, v.Power)
	}
	sort.Slice(ch.Validators, func(i, j int) bool { return ch.Validators[i].Name < ch.Validators[j].Name })
	ch.Tolerates = governance.Tolerance(powers)
	return ch
}
