package governance

import (
	"errors"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"
)

// Codespace is the ABCI codespace of governance's result codes, so the CLI
// can tell them from the consensus app's own.
const Codespace = "governance"

// codes maps a refusal to its ABCI code: its index + 1. Append only: a
// code, once on chain in a result, keeps its meaning.
var codes = []error{
	ErrDecode, ErrWrongChain, ErrBadSignature, ErrNotValidator, ErrReplayed,
	ErrUnknownProposal, ErrExpired, ErrFutureAnchor, ErrClosed, ErrDuplicate,
	ErrTooManyPending, ErrMemberExists, ErrKeyInUse, ErrUnknownMember,
	ErrLastMember, ErrSameKey, ErrBadPower, ErrBadName, ErrBadKey, ErrTooManyMembers,
	ErrBadCredHash,
}

// codeOther is for an error outside the table (none today).
const codeOther = 255

// Code is err's ABCI result code in Codespace; 0 for nil.
func Code(err error) uint32 {
	if err == nil {
		return 0
	}
	for i, e := range codes {
		if errors.Is(err, e) {
			return uint32(i + 1)
		}
	}
	return codeOther
}

// ErrorOf is the sentinel behind a code, for the CLI reading a CheckTx or
// tx result; nil for 0 or a code it does not know.
func ErrorOf(code uint32) error {
	if code == 0 || int(code) > len(codes) {
		return nil
	}
	return codes[code-1]
}

// BlockResult is what one block does to governance.
type BlockResult struct {
	State *State
	// TxResults has one entry per transaction given to Block, in order.
	TxResults []*abci.ExecTxResult
	// Updates are the block's validator updates: Diff of the state before
	// and after the block, one per key, as CometBFT requires.
	Updates []abci.ValidatorUpdate
	// Events are the block's own (expiries), for the response's Events.
	Events []Event
}

// Block runs one block's governance at height: Expire, then each
// transaction in order. txs are the block's transactions after the
// consensus payload. A refused transaction gets a non-zero code and
// changes nothing; the block goes on.
func Block(s *State, txs [][]byte, height uint64) BlockResult {
	start := s
	s, expired := Expire(s, height)
	res := BlockResult{Events: expired, TxResults: make([]*abci.ExecTxResult, 0, len(txs))}
	for _, tx := range txs {
		n, ev, _, err := Apply(s, tx, height)
		if err != nil {
			res.TxResults = append(res.TxResults, &abci.ExecTxResult{Code: Code(err), Codespace: Codespace, Log: err.Error()})
			continue
		}
		s = n
		r := &abci.ExecTxResult{}
		for _, e := range ev {
			r.Events = append(r.Events, e.ABCI())
		}
		res.TxResults = append(res.TxResults, r)
	}
	res.State = s
	res.Updates = Diff(start, s)
	return res
}

// Select is PrepareProposal's pick among the mempool's transactions: the
// governance ones that apply, in order, at height, within maxBytes, to go
// after the payload. Anything else is left out, so an honest proposer's
// block always passes Verify.
func Select(s *State, txs [][]byte, height uint64, maxBytes int64) [][]byte {
	s, _ = Expire(s, height)
	var out [][]byte
	var size int64
	for _, tx := range txs {
		if !IsTx(tx) || size+int64(len(tx)) > maxBytes {
			continue
		}
		n, _, _, err := Apply(s, tx, height)
		if err != nil {
			continue
		}
		s, size, out = n, size+int64(len(tx)), append(out, tx)
	}
	return out
}

// Verify is ProcessProposal's check of the transactions after the
// payload: every one must be governance's and apply in order. Refusing the
// block (rather than recording failed transactions) keeps junk off the
// chain; only a faulty proposer's block is refused, and the round moves on.
func Verify(s *State, txs [][]byte, height uint64) error {
	s, _ = Expire(s, height)
	for i, tx := range txs {
		n, _, _, err := Apply(s, tx, height)
		if err != nil {
			return fmt.Errorf("governance transaction %d: %w", i, err)
		}
		s = n
	}
	return nil
}

// Check is CheckTx's question for a governance transaction: would it
// apply on the last committed state at the next height? The mempool
// re-checks after every block, so a vote that became a replay leaves.
func Check(s *State, tx []byte, height uint64) error {
	s, _ = Expire(s, height)
	_, _, _, err := Apply(s, tx, height)
	return err
}
