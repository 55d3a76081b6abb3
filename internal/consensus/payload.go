package consensus

import (
	"fmt"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
)

// payloadFormat is the version byte of the wire format below. A node that
// meets another number refuses the proposal rather than guess.
const payloadFormat = 1

// maxPayloadBytes bounds what DecodePayload looks at: far above any block
// a 30M-gas chain makes, far below what would hurt a validator's memory.
const maxPayloadBytes = 64 << 20

// Payload is the content of a CometBFT block: one EL block and the
// execution requests (EIP-7685) that its header commits to. The requests
// travel beside the block because the header holds only their hash and
// newPayloadV4 wants them in full.
type Payload struct {
	Block    *types.Block
	Requests [][]byte
}

// wirePayload is the RLP shape of a Payload. The block is nested as its own
// RLP bytes so the outer list never needs to know a block's layout.
type wirePayload struct {
	Format   uint8
	Block    []byte
	Requests [][]byte
}

// PayloadFromEnvelope turns what engine_getPayload returned into a Payload.
// beaconRoot is the parent beacon block root the proposer asked for (it is
// not part of ExecutableData). engine.ExecutableDataToBlock checks that the
// data hashes to the block hash geth claimed, so a Payload always holds a
// self-consistent block.
func PayloadFromEnvelope(env *engine.ExecutionPayloadEnvelope, beaconRoot common.Hash) (*Payload, error) {
	if env == nil || env.ExecutionPayload == nil {
		return nil, fmt.Errorf("%w: empty envelope", ErrEngine)
	}
	data := *env.ExecutionPayload
	hashes, err := blobHashes(data.Transactions)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEngine, err)
	}
	requests := env.Requests
	if requests == nil {
		requests = [][]byte{}
	}
	block, err := engine.ExecutableDataToBlock(data, hashes, &beaconRoot, requests)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrEngine, err)
	}
	return &Payload{Block: block, Requests: requests}, nil
}

// blobHashes lists the versioned blob hashes of a payload's transactions in
// order, as newPayload wants them.
func blobHashes(txs [][]byte) ([]common.Hash, error) {
	hashes := []common.Hash{}
	for i, enc := range txs {
		var tx types.Transaction
		if err := tx.UnmarshalBinary(enc); err != nil {
			return nil, fmt.Errorf("transaction %d: %v", i, err)
		}
		hashes = append(hashes, tx.BlobHashes()...)
	}
	return hashes, nil
}

// EncodePayload is the ABCI transaction that carries p.
func EncodePayload(p *Payload) ([]byte, error) {
	if p == nil || p.Block == nil {
		return nil, fmt.Errorf("%w: no block", ErrDecode)
	}
	block, err := rlp.EncodeToBytes(p.Block)
	if err != nil {
		return nil, err
	}
	requests := p.Requests
	if requests == nil {
		requests = [][]byte{}
	}
	return rlp.EncodeToBytes(&wirePayload{Format: payloadFormat, Block: block, Requests: requests})
}

// DecodePayload parses an ABCI transaction. It never panics: the input
// comes from any peer that proposes (FuzzDecodePayload). A decoded payload
// is only well-formed; whether it may be final is CheckPayload's question
// and then geth's.
func DecodePayload(tx []byte) (*Payload, error) {
	if len(tx) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrDecode)
	}
	if len(tx) > maxPayloadBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrDecode, len(tx), maxPayloadBytes)
	}
	var w wirePayload
	if err := rlp.DecodeBytes(tx, &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if w.Format != payloadFormat {
		return nil, fmt.Errorf("%w: format %d, want %d", ErrDecode, w.Format, payloadFormat)
	}
	block := new(types.Block)
	if err := rlp.DecodeBytes(w.Block, block); err != nil {
		return nil, fmt.Errorf("%w: block: %v", ErrDecode, err)
	}
	for i, r := range w.Requests {
		// EIP-7685: a request is a type byte and data; empty ones are
		// left out of the list, never sent as empty entries.
		if len(r) < 2 {
			return nil, fmt.Errorf("%w: request %d is %d bytes", ErrDecode, i, len(r))
		}
	}
	if w.Requests == nil {
		w.Requests = [][]byte{}
	}
	return &Payload{Block: block, Requests: w.Requests}, nil
}

// ExecutableData is the payload in the Engine API's shape, for newPayload.
func (p *Payload) ExecutableData() engine.ExecutableData {
	return *engine.BlockToExecutableData(p.Block, nil, nil, p.Requests).ExecutionPayload
}

// BlobHashes are the versioned hashes newPayload checks against the
// block's blob transactions.
func (p *Payload) BlobHashes() []common.Hash {
	hashes := []common.Hash{}
	for _, tx := range p.Block.Transactions() {
		hashes = append(hashes, tx.BlobHashes()...)
	}
	return hashes
}

// beaconRoot is the header's parent beacon block root, zero when absent
// (CheckPayload refuses such a block; this keeps a decided one from
// panicking the import).
func (p *Payload) beaconRoot() common.Hash {
	if r := p.Block.BeaconRoot(); r != nil {
		return *r
	}
	return common.Hash{}
}

// Hash is the EL block hash: the app hash of the height that carries p.
func (p *Payload) Hash() common.Hash { return p.Block.Hash() }
