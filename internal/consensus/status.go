package consensus

import (
	"encoding/hex"
	"maps"
	"strings"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/api/cometbft/types/v1"
	"github.com/ethereum/go-ethereum/common"
)

// Status is a snapshot for dashboards and the devnet's block printer.
// Validator addresses are CometBFT's (upper-case hex of the consensus key's
// address), the same strings the CometBFT genesis shows.
type Status struct {
	// Height is the last final height; ELHash its EL block hash.
	Height int64
	ELHash common.Hash
	// Round and Proposer are the round in progress at Height+1 and its
	// proposer; Round above 0 means a proposer failed.
	Round    int32
	Proposer string
	// LastBlockTime is the CometBFT time of the last final block and
	// BlockInterval the time since the block before it.
	LastBlockTime time.Time
	BlockInterval time.Duration
	// Signers and Absent are the validators that signed (did not sign) the
	// commit of Height-1, as recorded in block Height.
	Signers []string
	Absent  []string
	// BlockProposer is the validator that proposed the block at Height.
	BlockProposer string
	// Powers are the voting powers of the validators of the last commit
	// (Signers and Absent), by address.
	Powers map[string]int64
	// IsValidator is true when this node has a validator key, and
	// ValidatorAddress is that key's address.
	IsValidator      bool
	ValidatorAddress string
	// Peers is the number of connected CometBFT peers.
	Peers int
}

// statusTracker keeps what Status reports, fed by FinalizeBlock and by
// CometBFT's NewRound events.
type statusTracker struct {
	mu sync.Mutex
	s  Status
}

func (t *statusTracker) finalized(req *abci.FinalizeBlockRequest, hash common.Hash, m *metrics) {
	var signers, absent []string
	powers := make(map[string]int64, len(req.DecidedLastCommit.Votes))
	for _, v := range req.DecidedLastCommit.Votes {
		addr := strings.ToUpper(hex.EncodeToString(v.Validator.Address))
		powers[addr] = v.Validator.Power
		if v.BlockIdFlag == cmtproto.BlockIDFlagCommit {
			signers = append(signers, addr)
		} else {
			absent = append(absent, addr)
			m.missedSignatures.WithLabelValues(addr).Inc()
		}
	}
	if len(req.DecidedLastCommit.Votes) > 0 {
		m.roundsPerBlock.Observe(float64(req.DecidedLastCommit.Round + 1))
	}
	m.height.Set(float64(req.Height))

	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.s.LastBlockTime.IsZero() && t.s.Height == req.Height-1 {
		t.s.BlockInterval = req.Time.Sub(t.s.LastBlockTime)
		m.blockInterval.Observe(t.s.BlockInterval.Seconds())
	} else {
		t.s.BlockInterval = 0
	}
	t.s.Height, t.s.ELHash, t.s.LastBlockTime = req.Height, hash, req.Time
	t.s.Signers, t.s.Absent, t.s.Powers = signers, absent, powers
	t.s.BlockProposer = strings.ToUpper(hex.EncodeToString(req.ProposerAddress))
}

func (t *statusTracker) newRound(height int64, round int32, proposer []byte, m *metrics) {
	m.round.Set(float64(round))
	t.mu.Lock()
	defer t.mu.Unlock()
	t.s.Round = round
	t.s.Proposer = strings.ToUpper(hex.EncodeToString(proposer))
	_ = height
}

func (t *statusTracker) get() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.s
	s.Signers = append([]string(nil), s.Signers...)
	s.Absent = append([]string(nil), s.Absent...)
	s.Powers = maps.Clone(s.Powers)
	return s
}
