package consensus

import (
	"context"
	"errors"
	"fmt"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/consortium/consortium/internal/governance"
)

// engineCallTimeout bounds one Engine API call inside a proposal step: a
// slow geth must cost the round, not stall it.
const engineCallTimeout = 5 * time.Second

// PrepareProposal asks geth for a block on top of the last final one and
// makes it the block's first transaction; after it come the governance
// transactions of the mempool that apply, in order (governance.Select).
// Anything else CometBFT offers is dropped.
//
// It never returns an error: CometBFT treats that as a consensus failure.
// When geth cannot build, the proposal is empty; every validator refuses
// it and the next round's proposer tries.
func (a *app) PrepareProposal(ctx context.Context, req *abci.PrepareProposalRequest) (*abci.PrepareProposalResponse, error) {
	tx, err := a.build(ctx, req.Height, req.Time)
	if err != nil {
		a.log.Warn("consensus: cannot build a payload; proposing an empty block", "height", req.Height, "err", err)
		a.metrics.buildFailures.Inc()
		return &abci.PrepareProposalResponse{}, nil
	}
	if int64(len(tx)) > req.MaxTxBytes {
		a.log.Error("consensus: payload larger than the block allows; raise the consensus params' block max_bytes",
			"height", req.Height, "bytes", len(tx), "max", req.MaxTxBytes)
		a.metrics.buildFailures.Inc()
		return &abci.PrepareProposalResponse{}, nil
	}
	txs := [][]byte{tx}
	if len(req.Txs) > 0 {
		v := a.gov.view()
		txs = append(txs, governance.Select(v.state, req.Txs, uint64(req.Height), req.MaxTxBytes-int64(len(tx)))...)
	}
	return &abci.PrepareProposalResponse{Txs: txs}, nil
}

func (a *app) build(ctx context.Context, height int64, blockTime time.Time) ([]byte, error) {
	parent := a.lastFinal()
	if parent.Number+1 != uint64(height) {
		return nil, fmt.Errorf("%w: height %d, last final %d", ErrNotReady, height, parent.Number)
	}
	attrs := DeriveAttributes(height, parent, blockTime)
	fc := engine.ForkchoiceStateV1{HeadBlockHash: parent.Hash, SafeBlockHash: parent.Hash, FinalizedBlockHash: parent.Hash}
	cctx, cancel := context.WithTimeout(ctx, engineCallTimeout)
	defer cancel()
	res, err := a.eng.ForkchoiceUpdated(cctx, fc, &engine.PayloadAttributes{
		Timestamp:             attrs.Timestamp,
		Random:                attrs.PrevRandao,
		SuggestedFeeRecipient: a.feeRecipient,
		Withdrawals:           []*types.Withdrawal{},
		BeaconRoot:            &attrs.BeaconRoot,
	})
	if err != nil {
		return nil, fmt.Errorf("%w: forkchoiceUpdated: %v", ErrEngine, err)
	}
	if res.PayloadStatus.Status != engine.VALID || res.PayloadID == nil {
		return nil, fmt.Errorf("%w: forkchoiceUpdated: status %s, payload id %v", ErrPayloadStatus, res.PayloadStatus.Status, res.PayloadID)
	}
	select {
	case <-time.After(a.buildWait):
	case <-cctx.Done():
		return nil, cctx.Err()
	}
	env, err := a.eng.GetPayload(cctx, *res.PayloadID)
	if err != nil {
		return nil, fmt.Errorf("%w: getPayload: %v", ErrEngine, err)
	}
	p, err := PayloadFromEnvelope(env, attrs.BeaconRoot)
	if err != nil {
		return nil, err
	}
	return EncodePayload(p)
}

// ProcessProposal accepts a proposal only when its first transaction is a
// payload that meets the rules (CheckPayload) and geth calls VALID, and
// every transaction after it is a governance transaction that applies in
// order (governance.Verify). geth answering SYNCING or ACCEPTED (it could
// not execute the block) counts as a refusal: a validator votes only for
// what its own geth has executed.
func (a *app) ProcessProposal(ctx context.Context, req *abci.ProcessProposalRequest) (*abci.ProcessProposalResponse, error) {
	if err := a.verify(ctx, req.Height, req.Time, req.Txs); err != nil {
		a.log.Warn("consensus: refusing proposal", "height", req.Height, "proposer", fmt.Sprintf("%X", req.ProposerAddress), "err", err)
		a.metrics.proposalsRefused.WithLabelValues(refusalReason(err)).Inc()
		return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_REJECT}, nil
	}
	return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_ACCEPT}, nil
}

func (a *app) verify(ctx context.Context, height int64, blockTime time.Time, txs [][]byte) error {
	if len(txs) == 0 {
		return fmt.Errorf("%w: no payload transaction", ErrDecode)
	}
	p, err := DecodePayload(txs[0])
	if err != nil {
		return err
	}
	if err := CheckPayload(p, height, a.lastFinal(), blockTime); err != nil {
		return err
	}
	if len(txs) > 1 {
		v := a.gov.view()
		if err := governance.Verify(v.state, txs[1:], uint64(height)); err != nil {
			return fmt.Errorf("%w: %v", ErrGovernance, err)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, engineCallTimeout)
	defer cancel()
	st, err := a.eng.NewPayload(cctx, p.ExecutableData(), p.BlobHashes(), p.beaconRoot(), p.Requests)
	if err != nil {
		return fmt.Errorf("%w: newPayload: %v", ErrEngine, err)
	}
	if st.Status != engine.VALID {
		msg := ""
		if st.ValidationError != nil {
			msg = *st.ValidationError
		}
		return fmt.Errorf("%w: newPayload %s %s", ErrPayloadStatus, st.Status, msg)
	}
	a.markValidated(p.Hash())
	return nil
}

// refusalReason is a metric label: the rule a refused proposal broke.
func refusalReason(err error) string {
	for _, r := range []struct {
		err   error
		label string
	}{
		{ErrDecode, "decode"}, {ErrNotReady, "not_ready"}, {ErrWrongNumber, "number"},
		{ErrWrongParent, "parent"}, {ErrWrongTimestamp, "timestamp"}, {ErrWrongRandao, "prevrandao"},
		{ErrWrongBeaconRoot, "beacon_root"}, {ErrWithdrawals, "withdrawals"},
		{ErrRequestsMismatch, "requests"}, {ErrGovernance, "governance"}, {ErrPayloadStatus, "geth_refused"}, {ErrEngine, "engine_error"},
	} {
		if errors.Is(err, r.err) {
			return r.label
		}
	}
	return "other"
}
