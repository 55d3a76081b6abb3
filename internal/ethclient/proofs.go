package ethclient

import (
	"context"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// Prover gives what lets the registrar check a node's status instead of
// taking its word (docs/api.md, status.head_header and status.coinbase_sig):
// the head block's header, whose Clique seal names its signer, and a
// signature by the node's coinbase key. Clients without these methods
// answer with errors (ErrMethodNotFound), which callers take as "no proof".
type Prover interface {
	// RawHeader is block number's header, RLP (debug_getRawHeader; the
	// IPC socket serves it, over HTTP geth needs --http.api debug).
	RawHeader(ctx context.Context, number uint64) ([]byte, error)
	// SignText signs msg with addr's key as eth_sign does (the EIP-191
	// text prefix; V is 27 or 28). The key must be unlocked in the client.
	SignText(ctx context.Context, addr common.Address, msg []byte) ([]byte, error)
}

var _ Prover = (*Geth)(nil)

// RawHeader calls debug_getRawHeader.
func (g *Geth) RawHeader(ctx context.Context, number uint64) ([]byte, error) {
	var b hexutil.Bytes
	if err := g.call(ctx, &b, "debug_getRawHeader", hexutil.EncodeUint64(number)); err != nil {
		return nil, err
	}
	return b, nil
}

// SignText calls eth_sign.
func (g *Geth) SignText(ctx context.Context, addr common.Address, msg []byte) ([]byte, error) {
	var sig hexutil.Bytes
	if err := g.call(ctx, &sig, "eth_sign", addr, hexutil.Bytes(msg)); err != nil {
		return nil, err
	}
	return sig, nil
}
