package ethclient

import (
	"context"
	"strings"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// ChainInfo is optional detail for the dashboard: who sealed the head block
// (Clique only) and this node's own coinbase. Clients without these methods
// answer with errors, which callers treat as "unknown".
type ChainInfo interface {
	// HeadSigner is the Clique signer of block number (clique_getSigner).
	HeadSigner(ctx context.Context, number uint64) (string, error)
	// Coinbase is the node's etherbase (eth_coinbase).
	Coinbase(ctx context.Context) (string, error)
}

var _ ChainInfo = (*Geth)(nil)

// HeadSigner calls clique_getSigner.
func (g *Geth) HeadSigner(ctx context.Context, number uint64) (string, error) {
	var addr string
	if err := g.call(ctx, &addr, "clique_getSigner", hexutil.EncodeUint64(number)); err != nil {
		return "", err
	}
	return strings.ToLower(addr), nil
}

// Coinbase calls eth_coinbase.
func (g *Geth) Coinbase(ctx context.Context) (string, error) {
	var addr string
	if err := g.call(ctx, &addr, "eth_coinbase"); err != nil {
		return "", err
	}
	return strings.ToLower(addr), nil
}
