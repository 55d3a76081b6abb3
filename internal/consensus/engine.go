package consensus

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/big"
	"os"
	"strings"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"
)

// Engine is the part of geth's Engine API the app uses. It is an interface
// so a test can stand between the app and geth (a proposer that corrupts
// its payloads, an engine that is down) without a fake geth.
type Engine interface {
	// ForkchoiceUpdated is engine_forkchoiceUpdatedV3: moves head, safe and
	// finalized, and starts building a payload when attrs is not nil.
	ForkchoiceUpdated(ctx context.Context, state engine.ForkchoiceStateV1, attrs *engine.PayloadAttributes) (engine.ForkChoiceResponse, error)
	// GetPayload is engine_getPayloadV4 (Prague).
	GetPayload(ctx context.Context, id engine.PayloadID) (*engine.ExecutionPayloadEnvelope, error)
	// NewPayload is engine_newPayloadV4 (Prague).
	NewPayload(ctx context.Context, data engine.ExecutableData, blobHashes []common.Hash, beaconRoot common.Hash, requests [][]byte) (engine.PayloadStatusV1, error)
	// Head is geth's current head header (eth_getBlockByNumber "latest").
	Head(ctx context.Context) (*types.Header, error)
	// HeaderAt is geth's canonical header at number (eth_getBlockByNumber).
	HeaderAt(ctx context.Context, number uint64) (*types.Header, error)
	Close()
}

// The Engine API versions for a chain whose newest fork is Prague:
// geth 1.17 serves Prague with fcuV3, getPayloadV4 and newPayloadV4
// (getPayloadV5 is Osaka's). A chain that schedules Osaka needs V5 here.
const (
	methodForkchoice = "engine_forkchoiceUpdatedV3"
	methodGetPayload = "engine_getPayloadV4"
	methodNewPayload = "engine_newPayloadV4"
)

// gethEngine talks to geth's authenticated RPC port.
type gethEngine struct {
	rpc *rpc.Client
	eth *ethclient.Client
}

// DialEngine connects to geth's authrpc endpoint with a JWT secret. The
// rpc client dials lazily over HTTP, so this succeeds while geth is down;
// calls fail until it is up.
func DialEngine(ctx context.Context, url string, secret []byte) (Engine, error) {
	if len(secret) != 32 {
		return nil, fmt.Errorf("%w: JWT secret is %d bytes, want 32", ErrConfig, len(secret))
	}
	var key [32]byte
	copy(key[:], secret)
	c, err := rpc.DialOptions(ctx, url, rpc.WithHTTPAuth(node.NewJWTAuth(key)))
	if err != nil {
		return nil, fmt.Errorf("%w: engine URL %q: %v", ErrConfig, url, err)
	}
	return &gethEngine{rpc: c, eth: ethclient.NewClient(c)}, nil
}

func (g *gethEngine) ForkchoiceUpdated(ctx context.Context, state engine.ForkchoiceStateV1, attrs *engine.PayloadAttributes) (engine.ForkChoiceResponse, error) {
	var res engine.ForkChoiceResponse
	err := g.rpc.CallContext(ctx, &res, methodForkchoice, state, attrs)
	return res, err
}

func (g *gethEngine) GetPayload(ctx context.Context, id engine.PayloadID) (*engine.ExecutionPayloadEnvelope, error) {
	var res engine.ExecutionPayloadEnvelope
	if err := g.rpc.CallContext(ctx, &res, methodGetPayload, id); err != nil {
		return nil, err
	}
	return &res, nil
}

func (g *gethEngine) NewPayload(ctx context.Context, data engine.ExecutableData, blobHashes []common.Hash, beaconRoot common.Hash, requests [][]byte) (engine.PayloadStatusV1, error) {
	reqs := make([]hexutil.Bytes, len(requests))
	for i, r := range requests {
		reqs[i] = r
	}
	if blobHashes == nil {
		blobHashes = []common.Hash{}
	}
	var res engine.PayloadStatusV1
	err := g.rpc.CallContext(ctx, &res, methodNewPayload, data, blobHashes, beaconRoot, reqs)
	return res, err
}

func (g *gethEngine) Head(ctx context.Context) (*types.Header, error) {
	return g.eth.HeaderByNumber(ctx, nil)
}

func (g *gethEngine) HeaderAt(ctx context.Context, number uint64) (*types.Header, error) {
	return g.eth.HeaderByNumber(ctx, new(big.Int).SetUint64(number))
}

func (g *gethEngine) Close() { g.rpc.Close() }

// LoadJWTSecret reads a geth-style JWT secret file: 32 bytes as hex, with
// or without 0x, surrounding white space ignored.
func LoadJWTSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: JWT secret: %v", ErrConfig, err)
	}
	s := strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")
	secret, err := hex.DecodeString(s)
	if err != nil || len(secret) != 32 {
		return nil, fmt.Errorf("%w: JWT secret %s is not 32 bytes of hex", ErrConfig, path)
	}
	return secret, nil
}
