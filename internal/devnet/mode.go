package devnet

import (
	"fmt"
	"strings"

	"github.com/consortium/consortium/internal/consortiuminit"
)

// Consensus is the chain a devnet runs: consortiuminit's kinds. A
// consortium keeps the kind it was created with: a reused directory's
// consortium.json decides.
type Consensus = consortiuminit.Consensus

// The consensus kinds.
const (
	// BFT is the reference chain: CometBFT (in this process, one node
	// beside every geth) drives geth v1.17 over the Engine API; a block is
	// final when it appears. The default.
	BFT = consortiuminit.ConsensusBFT
	// Clique is the legacy chain: geth v1.13.15 seals Clique blocks on its
	// own, with no finality.
	Clique = consortiuminit.ConsensusClique
)

// ParseConsensus reads a --consensus value; "" is the default, BFT.
func ParseConsensus(s string) (Consensus, error) {
	switch c := Consensus(strings.ToLower(strings.TrimSpace(s))); c {
	case "":
		return BFT, nil
	case BFT, Clique:
		return c, nil
	}
	return "", fmt.Errorf("%w (got %q)", ErrBadConsensus, s)
}

// GethVersion is the geth release a consensus kind runs: v1.17.10 (the
// newest) for BFT, v1.13.15 (the last geth that seals Clique blocks) for
// Clique.
func GethVersion(c Consensus) string {
	if c == Clique {
		return "v1.13.15"
	}
	return "v1.17.10"
}

// gethLine is the "1.N." prefix of `geth version` that c accepts.
func gethLine(c Consensus) string {
	v := strings.TrimPrefix(GethVersion(c), "v")
	i := strings.LastIndexByte(v, '.')
	return v[:i+1]
}

// DefaultMembers are the members of a new devnet when none are named: four
// for BFT, so one can be lost without a pause (n ≥ 3f + 1); three for
// Clique, as before.
func DefaultMembers(c Consensus) []string {
	if c == Clique {
		return []string{"a", "b", "c"}
	}
	return []string{"a", "b", "c", "d"}
}

// DefaultPeriod is the block period of a new consortium in seconds: the
// BFT target block time (1 s, CometBFT's commit timeout) or the Clique
// period (2 s).
func DefaultPeriod(c Consensus) uint64 {
	if c == Clique {
		return 2
	}
	return 1
}

// portRanges is how many port ranges of portStride a node of c uses:
// devp2p, HTTP, Engine API, and for BFT CometBFT's P2P and the
// validators' consensus RPC.
func portRanges(c Consensus) int {
	if c == Clique {
		return 3
	}
	return 5
}
