package consensus

import (
	"context"
	"fmt"
	"strings"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/ethereum/go-ethereum/beacon/engine"

	"github.com/consortium/consortium/internal/governance"
)

// FinalizeBlock imports the decided block into geth (newPayload) and makes
// it head, safe and finalized at once (forkchoiceUpdated): a block is final
// the moment it appears. The app hash of the height is the EL block hash.
//
// geth being down or busy does not fail the block: the import is retried
// with backoff until it succeeds or the node stops. Returning an error here
// would halt consensus (CometBFT's block sync even panics on it), and a
// decided block cannot be undecided anyway. When the node stops mid-retry
// the response still carries the block's hash (known from the payload
// itself); geth then lacks the block, Info reports geth's lower head at the
// next start, and CometBFT's handshake replays it.
//
// The governance transactions after the payload run against the committed
// governance state (governance.Block): a refused one gets a non-zero code
// and changes nothing, a proposal that passes returns its validator
// updates, which CometBFT applies two heights later. The app hash folds
// the EL block hash with the governance state (governance.AppHash).
func (a *app) FinalizeBlock(_ context.Context, req *abci.FinalizeBlockRequest) (*abci.FinalizeBlockResponse, error) {
	if len(req.Txs) == 0 {
		return nil, fmt.Errorf("%w: decided block %d has no payload transaction", ErrDecode, req.Height)
	}
	p, err := DecodePayload(req.Txs[0])
	if err != nil {
		return nil, fmt.Errorf("decided block %d: %w", req.Height, err)
	}
	if p.Block.NumberU64() != uint64(req.Height) {
		return nil, fmt.Errorf("%w: decided block %d carries EL block %d", ErrWrongNumber, req.Height, p.Block.NumberU64())
	}
	a.importFinal(p, a.takeValidated(p.Hash()))
	a.setLastFinal(Parent{Number: p.Block.NumberU64(), Hash: p.Hash(), Time: p.Block.Time()})
	a.status.finalized(req, p.Hash(), a.metrics)

	height := uint64(req.Height)
	g := governance.Block(a.gov.view().state, req.Txs[1:], height)
	appHash := governance.AppHash(p.Hash().Bytes(), g.State)
	a.gov.finalized(height, g.State, appHash)
	events := make([]abci.Event, 0, len(g.Events))
	for _, e := range g.Events {
		events = append(events, e.ABCI())
	}
	for _, r := range g.TxResults {
		for _, e := range r.Events {
			a.log.Info("consensus: governance", "height", height, "event", eventString(e))
		}
	}
	for _, e := range events {
		a.log.Info("consensus: governance", "height", height, "event", eventString(e))
	}
	if len(g.Updates) > 0 {
		a.log.Info("consensus: the validator set changes by the members' vote", "height", height, "updates", len(g.Updates), "members", len(g.State.Members))
	}
	return &abci.FinalizeBlockResponse{
		TxResults:        append([]*abci.ExecTxResult{{Code: 0}}, g.TxResults...),
		ValidatorUpdates: g.Updates,
		Events:           events,
		AppHash:          appHash,
	}, nil
}

// eventString is a governance event for the log: its attributes in order.
func eventString(e abci.Event) string {
	var b strings.Builder
	for i, at := range e.Attributes {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(at.Key + "=" + at.Value)
	}
	return b.String()
}

// importFinal retries tryImport until it succeeds or a.ctx ends. known
// says geth validated the block in ProcessProposal; then the first attempt
// only moves the fork choice, and any failure falls back to newPayload
// (geth may have restarted and lost the block meanwhile).
func (a *app) importFinal(p *Payload, known bool) {
	wait := a.retryMin
	for attempt := 1; ; attempt++ {
		err := a.tryImport(p, known && attempt == 1)
		if err == nil {
			return
		}
		a.metrics.engineErrors.Inc()
		if attempt == 1 || attempt%10 == 0 {
			a.log.Warn("consensus: geth did not take the final block; retrying",
				"number", p.Block.NumberU64(), "hash", p.Hash(), "attempt", attempt, "err", err)
		}
		select {
		case <-a.ctx.Done():
			a.log.Warn("consensus: stopping with a final block geth does not have; the next start replays it",
				"number", p.Block.NumberU64())
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, a.retryMax)
	}
}

func (a *app) tryImport(p *Payload, known bool) error {
	ctx, cancel := context.WithTimeout(a.ctx, engineCallTimeout)
	defer cancel()
	if !known {
		st, err := a.eng.NewPayload(ctx, p.ExecutableData(), p.BlobHashes(), p.beaconRoot(), p.Requests)
		if err != nil {
			return fmt.Errorf("%w: newPayload: %v", ErrEngine, err)
		}
		switch st.Status {
		case engine.VALID:
		case engine.SYNCING, engine.ACCEPTED:
			// geth lacks the parent or its state. After a crash geth
			// rewinds to the last block whose state it flushed and may
			// switch itself to snap sync, where it waits for a fork
			// choice to a head it does not have ("forced head needed for
			// startup"). The update below is that head: geth syncs to it
			// from its devp2p peers, and a later attempt finds it VALID.
		default:
			// INVALID for a decided block means this geth disagrees
			// with more than 2/3 of the validators (a corrupt database,
			// another genesis): it is logged on every tenth try and
			// retried, since halting would not make it agree either.
			return fmt.Errorf("%w: newPayload %s", ErrPayloadStatus, st.Status)
		}
	}
	h := p.Hash()
	res, err := a.eng.ForkchoiceUpdated(ctx, engine.ForkchoiceStateV1{HeadBlockHash: h, SafeBlockHash: h, FinalizedBlockHash: h}, nil)
	if err != nil {
		return fmt.Errorf("%w: forkchoiceUpdated: %v", ErrEngine, err)
	}
	if res.PayloadStatus.Status != engine.VALID {
		return fmt.Errorf("%w: forkchoiceUpdated %s", ErrPayloadStatus, res.PayloadStatus.Status)
	}
	return nil
}
