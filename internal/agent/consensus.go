package agent

import (
	"slices"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/noderecord"
)

// Consensus is the node's consensus process as the agent drives it:
// internal/consensus's *Node implements it.
type Consensus interface {
	// SetPeers makes addrs ("id@host:port") the exact peer set.
	SetPeers(addrs []string) error
	// ID is the CometBFT node ID, 40 hex characters.
	ID() string
}

// ConsensusReporter is a Consensus that also tells where the chain stands;
// the agent sends that with each renewal, for the dashboard.
type ConsensusReporter interface {
	Report() *api.ConsensusStatus
}

// consensusEntry is the "cmt" entry of the record at port, or nil without
// a consensus process. The ID was checked by withDefaults.
func (a *Agent) consensusEntry(port int) *noderecord.Consensus {
	if a.cfg.Consensus == nil {
		return nil
	}
	id, err := noderecord.ParseConsensusID(a.cfg.Consensus.ID())
	if err != nil {
		return nil
	}
	return &noderecord.Consensus{ID: id, Port: uint16(port)}
}

// setConsensusPeers records the consensus list of a new answer for the main
// loop to apply (consensusStep), so every call that changes a peer set,
// the client's or the consensus process's, is made from one goroutine.
func (a *Agent) setConsensusPeers(list []string) {
	if a.cfg.Consensus == nil {
		return
	}
	a.mu.Lock()
	a.cmtWant, a.cmtPending = slices.Clone(list), true
	a.mu.Unlock()
}

// consensusStep applies a pending consensus list. A refused list is logged
// once and not retried: it is the registrar's answer that is wrong, and
// the next answer replaces it.
func (a *Agent) consensusStep() {
	a.mu.Lock()
	list, pending := a.cmtWant, a.cmtPending
	a.cmtPending = false
	a.mu.Unlock()
	if !pending {
		return
	}
	if list == nil {
		list = []string{}
	}
	if err := a.cfg.Consensus.SetPeers(list); err != nil {
		a.log.Warn("the consensus process refused the peer set", "peers", len(list), "err", err)
		return
	}
	a.log.Info("consensus peers set", "peers", len(list))
}
