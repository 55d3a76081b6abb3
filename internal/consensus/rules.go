package consensus

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

// Parent is the last final EL block, the one every proposal builds on.
type Parent struct {
	Number uint64
	Hash   common.Hash
	Time   uint64 // EL timestamp, seconds
}

// Attributes are the payload attributes of a height: what the proposer
// asks geth to build with and what every validator checks. Only the fee
// recipient is the proposer's own choice, so it is not here.
type Attributes struct {
	Timestamp  uint64
	PrevRandao common.Hash
	BeaconRoot common.Hash
}

// Domain tags keep the two derived values apart and mark them as ours.
const (
	randaoTag     = "consortium/consensus/prevrandao/v1"
	beaconRootTag = "consortium/consensus/parent-beacon-root/v1"
)

// DeriveAttributes computes the payload attributes of height from its
// parent and the CometBFT block time.
//
// The timestamp follows CometBFT's block time (so EL time tracks the
// consensus clock, which is BFT time, the median of the validators'
// clocks), but the EL demands a strictly growing timestamp in whole
// seconds, so two blocks in one second get parent+1. prevRandao and the
// parent beacon root have no beacon chain behind them here; they are
// derived from the height and the parent hash so every validator computes
// the same value without talking to anyone. prevRandao is therefore NOT
// unpredictable randomness: contracts must not use it as such.
func DeriveAttributes(height int64, parent Parent, blockTime time.Time) Attributes {
	ts := parent.Time + 1
	if sec := blockTime.Unix(); sec > 0 && uint64(sec) > ts {
		ts = uint64(sec)
	}
	return Attributes{
		Timestamp:  ts,
		PrevRandao: derive(randaoTag, height, parent.Hash),
		BeaconRoot: derive(beaconRootTag, height, parent.Hash),
	}
}

func derive(tag string, height int64, parent common.Hash) common.Hash {
	var h [8]byte
	binary.BigEndian.PutUint64(h[:], uint64(height))
	return crypto.Keccak256Hash([]byte(tag), h[:], parent[:])
}

// CheckPayload applies the rules a proposal must meet before geth is asked
// whether it executes: it extends the last final block, at the height's
// number, with the attributes every validator derives alike, and carries
// no withdrawals (there is no beacon chain to pay out). It returns nil or
// an error wrapping one of the Err* sentinels.
func CheckPayload(p *Payload, height int64, parent Parent, blockTime time.Time) error {
	if height < 1 || parent.Number+1 != uint64(height) {
		return fmt.Errorf("%w: height %d, last final %d", ErrNotReady, height, parent.Number)
	}
	b := p.Block
	if b.NumberU64() != uint64(height) {
		return fmt.Errorf("%w: number %d at height %d", ErrWrongNumber, b.NumberU64(), height)
	}
	if b.ParentHash() != parent.Hash {
		return fmt.Errorf("%w: parent %s, last final %s", ErrWrongParent, b.ParentHash(), parent.Hash)
	}
	want := DeriveAttributes(height, parent, blockTime)
	if b.Time() != want.Timestamp {
		return fmt.Errorf("%w: %d, want %d", ErrWrongTimestamp, b.Time(), want.Timestamp)
	}
	if b.MixDigest() != want.PrevRandao {
		return fmt.Errorf("%w: %s, want %s", ErrWrongRandao, b.MixDigest(), want.PrevRandao)
	}
	if root := b.BeaconRoot(); root == nil || *root != want.BeaconRoot {
		return fmt.Errorf("%w: %v, want %s", ErrWrongBeaconRoot, root, want.BeaconRoot)
	}
	if w := b.Withdrawals(); w == nil || len(w) != 0 {
		return fmt.Errorf("%w: %d", ErrWithdrawals, len(w))
	}
	if h := b.Header().WithdrawalsHash; h == nil || *h != types.EmptyWithdrawalsHash {
		return fmt.Errorf("%w: withdrawals root %v", ErrWithdrawals, h)
	}
	if h := b.Header().RequestsHash; h == nil || *h != types.CalcRequestsHash(p.Requests) {
		return fmt.Errorf("%w: header %v", ErrRequestsMismatch, h)
	}
	return nil
}
