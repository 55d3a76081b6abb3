package consensus

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/ethereum/go-ethereum/common"

	"github.com/consortium/consortium/internal/governance"
)

// ABCI result codes of ours (0 is OK in ABCI).
const (
	codeRefused  uint32 = 1 // CheckTx: the mempool is not a path for anything
	codeFiltered uint32 = 2 // Query /p2p/filter: a peer outside the set
	codeUnknown  uint32 = 3 // Query: a path we do not serve
)

// app is the ABCI++ application. CometBFT calls the consensus methods
// (InitChain, PrepareProposal, ProcessProposal, FinalizeBlock, Commit) one
// at a time on one connection, and Info and Query on another (the node uses
// a connection-synchronised local client, so a FinalizeBlock waiting for
// geth never holds up a peer filter query). Fields shared between the two
// are behind mu or atomic.
type app struct {
	abci.BaseApplication

	log          *slog.Logger
	eng          Engine
	feeRecipient common.Address
	// buildWait is how long PrepareProposal lets geth fill the payload
	// before fetching it: getPayload returns the best block so far, which
	// right after forkchoiceUpdated is often the empty one.
	buildWait time.Duration
	// retry bounds the backoff of FinalizeBlock's retries.
	retryMin, retryMax time.Duration
	metrics            *metrics

	// ctx ends when the node stops, so a FinalizeBlock retrying against a
	// geth that is down gives up instead of holding the stop forever.
	ctx context.Context

	mu   sync.Mutex
	last Parent // the last final EL block, which geth has as its head
	// validated holds the blocks of the current height that this geth
	// called VALID in ProcessProposal: FinalizeBlock need not send them
	// again (geth warns "Ignoring already known beacon payload" if it does).
	validated map[common.Hash]bool

	peers  atomic.Pointer[peerSet]
	status statusTracker

	// handshaken is set once Info has answered CometBFT's handshake.
	handshaken atomic.Bool

	// gov is the validator set by the members' vote: its transactions
	// follow the payload in a block, and its state is part of the app
	// hash.
	gov *gov
}

func newApp(ctx context.Context, eng Engine, g *gov, fee common.Address, log *slog.Logger, m *metrics) *app {
	a := &app{
		gov:          g,
		log:          log,
		eng:          eng,
		feeRecipient: fee,
		buildWait:    150 * time.Millisecond,
		retryMin:     100 * time.Millisecond,
		retryMax:     2 * time.Second,
		metrics:      m,
		ctx:          ctx,
	}
	a.peers.Store(&peerSet{})
	return a
}

func (a *app) lastFinal() Parent {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

func (a *app) setLastFinal(p Parent) {
	a.mu.Lock()
	a.last = p
	a.mu.Unlock()
}

func (a *app) markValidated(h common.Hash) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.validated == nil {
		a.validated = map[common.Hash]bool{}
	}
	a.validated[h] = true
}

// takeValidated reports whether h was validated at this height and forgets
// the height's validated blocks.
func (a *app) takeValidated(h common.Hash) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	ok := a.validated[h]
	a.validated = nil
	return ok
}

// syncHead reads geth's head into the app's last final block. geth's head
// is the truth: the app keeps no database of its own.
func (a *app) syncHead(ctx context.Context) (Parent, error) {
	h, err := a.eng.Head(ctx)
	if err != nil {
		return Parent{}, fmt.Errorf("%w: head: %v", ErrEngine, err)
	}
	p := Parent{Number: h.Number.Uint64(), Hash: h.Hash(), Time: h.Time}
	a.setLastFinal(p)
	return p, nil
}

// Info tells CometBFT's handshake how far the app is: the last height whose
// EL block geth has and whose governance state the journal holds, and that
// height's app hash. A geth that lost blocks in a crash answers with a
// lower head, and CometBFT replays the missing heights from its block
// store; so it does for heights the journal lacks (a journal lost or
// written one block behind geth), replaying from 0 when there is no
// journal at all.
//
// Only the first call (the handshake) looks at geth and the journal: a
// later one (the RPC's abci_info) answers from the last commit and
// changes nothing, since rewinding a running app would undo blocks it has
// finalized.
func (a *app) Info(ctx context.Context, _ *abci.InfoRequest) (*abci.InfoResponse, error) {
	if a.handshaken.Load() {
		v := a.gov.view()
		return &abci.InfoResponse{Data: "consortium", Version: "1", AppVersion: 1,
			LastBlockHeight: int64(v.height), LastBlockAppHash: v.appHash}, nil
	}
	res, err := a.handshakeInfo(ctx)
	if err == nil {
		a.handshaken.Store(true)
	}
	return res, err
}

func (a *app) handshakeInfo(ctx context.Context) (*abci.InfoResponse, error) {
	p, err := a.syncHead(ctx)
	if err != nil {
		return nil, err
	}
	res := &abci.InfoResponse{Data: "consortium", Version: "1", AppVersion: 1}
	last, ok := a.gov.recordedUpTo()
	if !ok || p.Number == 0 {
		if p.Number > 0 {
			a.log.Warn("consensus handshake: no governance journal; replaying the chain from height 1", "geth_head", p.Number)
		}
		a.log.Info("consensus handshake: nothing executed yet", "geth_head", p.Number)
		return res, nil
	}
	if last < p.Number {
		h, err := a.eng.HeaderAt(ctx, last)
		if err != nil {
			return nil, fmt.Errorf("%w: header %d: %v", ErrEngine, last, err)
		}
		p = Parent{Number: last, Hash: h.Hash(), Time: h.Time}
		a.setLastFinal(p)
	}
	s, err := a.gov.rewind(p.Number, p.Hash.Bytes())
	if err != nil {
		return nil, fmt.Errorf("%w: governance state at geth's head %d: %v", ErrConfig, p.Number, err)
	}
	a.log.Info("consensus handshake: geth head", "number", p.Number, "hash", p.Hash, "governance_members", len(s.Members))
	res.LastBlockHeight = int64(p.Number)
	res.LastBlockAppHash = a.gov.view().appHash
	return res, nil
}

// InitChain runs when the app has executed nothing. The app hash of the
// genesis folds geth's genesis hash with the members' first state, so two
// members whose geths started from different genesis files, or whose
// CometBFT genesis names other validators, disagree from the first block.
func (a *app) InitChain(ctx context.Context, req *abci.InitChainRequest) (*abci.InitChainResponse, error) {
	if req.InitialHeight > 1 {
		return nil, fmt.Errorf("%w: CometBFT initial_height %d: EL block numbers must equal heights, so it must be 1", ErrConfig, req.InitialHeight)
	}
	p, err := a.eng.HeaderAt(ctx, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: genesis header: %v", ErrEngine, err)
	}
	a.setLastFinal(Parent{Number: 0, Hash: p.Hash(), Time: p.Time})
	s, err := a.gov.initChain(p.Hash().Bytes())
	if err != nil {
		return nil, err
	}
	if err := governance.CheckValidators(s, req.Validators); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return &abci.InitChainResponse{AppHash: governance.AppHash(p.Hash().Bytes(), s)}, nil
}

// CheckTx admits governance transactions that would apply on the last
// committed state at the next height (the mempool checks again after every
// block, so a vote that became a replay or a proposal that expired
// leaves). Everything else is refused: Ethereum transactions travel over
// geth's devp2p.
func (a *app) CheckTx(_ context.Context, req *abci.CheckTxRequest) (*abci.CheckTxResponse, error) {
	if !governance.IsTx(req.Tx) {
		return &abci.CheckTxResponse{Code: codeRefused, Log: "consortium: send Ethereum transactions to geth, not to CometBFT; only governance transactions go here"}, nil
	}
	v := a.gov.view()
	if err := governance.Check(v.state, req.Tx, v.height+1); err != nil {
		return &abci.CheckTxResponse{Code: governance.Code(err), Codespace: governance.Codespace, Log: err.Error()}, nil
	}
	return &abci.CheckTxResponse{}, nil
}

// Query serves CometBFT's peer filter (filter_peers = true): a peer whose
// node ID is outside the set of the last SetPeers call is refused at the
// handshake, before any reactor sees it.
//
// /p2p/filter/addr/<ip:port> is answered OK: an inbound connection's
// address is its source IP and an ephemeral port, which behind NAT is not
// the address the peer advertises, so it proves nothing. The node ID, which
// the secret connection has authenticated by then, is the check.
func (a *app) Query(_ context.Context, req *abci.QueryRequest) (*abci.QueryResponse, error) {
	switch {
	case strings.HasPrefix(req.Path, "/p2p/filter/id/"):
		id := strings.TrimPrefix(req.Path, "/p2p/filter/id/")
		if a.peers.Load().allows(id) {
			return &abci.QueryResponse{}, nil
		}
		a.metrics.peersRefused.Inc()
		return &abci.QueryResponse{Code: codeFiltered, Log: "peer " + id + " is not in this node's peer set"}, nil
	case strings.HasPrefix(req.Path, "/p2p/filter/addr/"):
		return &abci.QueryResponse{}, nil
	case req.Path == QueryGovernanceState:
		v := a.gov.view()
		return &abci.QueryResponse{Value: v.state.Marshal(), Height: int64(v.height)}, nil
	}
	return &abci.QueryResponse{Code: codeUnknown, Log: "unknown query path"}, nil
}

// Commit writes the governance journal. The EL state needs nothing here:
// geth's database was written by FinalizeBlock's newPayload and
// forkchoiceUpdated.
func (a *app) Commit(context.Context, *abci.CommitRequest) (*abci.CommitResponse, error) {
	if err := a.gov.commit(); err != nil {
		// The journal is only for restarts: a node that cannot write it
		// goes on, and at its next start replays from the last journal
		// it did write.
		a.log.Error("consensus: cannot write the governance journal", "err", err)
	}
	return &abci.CommitResponse{}, nil
}
