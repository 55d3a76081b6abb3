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
}

func newApp(ctx context.Context, eng Engine, fee common.Address, log *slog.Logger, m *metrics) *app {
	a := &app{
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

// Info tells CometBFT's handshake how far geth is: its head number is the
// last height the app has executed and its hash that height's app hash. A
// geth that lost blocks in a crash answers with a lower head, and CometBFT
// replays the missing heights from its block store.
func (a *app) Info(ctx context.Context, _ *abci.InfoRequest) (*abci.InfoResponse, error) {
	p, err := a.syncHead(ctx)
	if err != nil {
		return nil, err
	}
	a.log.Info("consensus handshake: geth head", "number", p.Number, "hash", p.Hash)
	return &abci.InfoResponse{
		Data:             "consortium",
		Version:          "1",
		AppVersion:       1,
		LastBlockHeight:  int64(p.Number),
		LastBlockAppHash: p.Hash.Bytes(),
	}, nil
}

// InitChain runs when geth reports block 0. The app hash of the genesis is
// geth's genesis hash, so two members whose geths started from different
// genesis files disagree from the first block.
func (a *app) InitChain(ctx context.Context, req *abci.InitChainRequest) (*abci.InitChainResponse, error) {
	if req.InitialHeight > 1 {
		return nil, fmt.Errorf("%w: CometBFT initial_height %d: EL block numbers must equal heights, so it must be 1", ErrConfig, req.InitialHeight)
	}
	p := a.lastFinal()
	if p.Hash == (common.Hash{}) {
		var err error
		if p, err = a.syncHead(ctx); err != nil {
			return nil, err
		}
	}
	return &abci.InitChainResponse{AppHash: p.Hash.Bytes()}, nil
}

// CheckTx refuses everything: Ethereum transactions travel over geth's
// devp2p, and a tx that reached CometBFT's mempool would only end up in a
// proposal that ProcessProposal refuses.
func (*app) CheckTx(context.Context, *abci.CheckTxRequest) (*abci.CheckTxResponse, error) {
	return &abci.CheckTxResponse{Code: codeRefused, Log: "consortium: send Ethereum transactions to geth, not to CometBFT"}, nil
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
	}
	return &abci.QueryResponse{Code: codeUnknown, Log: "unknown query path"}, nil
}

// Commit persists nothing: geth's database is the app state, and it was
// written by FinalizeBlock's newPayload and forkchoiceUpdated.
func (*app) Commit(context.Context, *abci.CommitRequest) (*abci.CommitResponse, error) {
	return &abci.CommitResponse{}, nil
}
