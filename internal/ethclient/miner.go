package ethclient

import (
	"context"
	"errors"
	"time"

	"github.com/consortium/consortium/internal/ctxtime"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// Miner is the part of a Clique client's miner API the agent drives: a
// signer's geth runs without --mine and its agent starts sealing once the
// node is peered and at the head, and every geth 1.13 is made "synced" at
// start by starting and stopping its miner with an etherbase that is not a
// signer (see internal/agent/seal.go for why). geth v1.13 serves these
// methods; clients without them answer ErrMethodNotFound.
type Miner interface {
	// SetEtherbase sets the address the miner seals for (miner_setEtherbase).
	SetEtherbase(ctx context.Context, addr common.Address) error
	// StartMining starts the miner (miner_start); geth returns before the
	// miner runs.
	StartMining(ctx context.Context) error
	// StopMining stops the miner (miner_stop).
	StopMining(ctx context.Context) error
	// Mining reports whether the miner runs (eth_mining).
	Mining(ctx context.Context) (bool, error)
	// CanSign reports whether addr is unlocked in the client's keystore:
	// eth_sign answers only for an unlocked key.
	CanSign(ctx context.Context, addr common.Address) bool
}

var _ Miner = (*Geth)(nil)

// SetEtherbase calls miner_setEtherbase.
func (g *Geth) SetEtherbase(ctx context.Context, addr common.Address) error {
	var ok bool
	if err := g.call(ctx, &ok, "miner_setEtherbase", addr); err != nil {
		return err
	}
	if !ok {
		return &Error{Method: "miner_setEtherbase", Kind: ErrRemote, Message: "miner_setEtherbase refused " + addr.Hex()}
	}
	return nil
}

// StartMining calls miner_start.
func (g *Geth) StartMining(ctx context.Context) error {
	return g.call(ctx, nil, "miner_start")
}

// StopMining calls miner_stop.
func (g *Geth) StopMining(ctx context.Context) error {
	return g.call(ctx, nil, "miner_stop")
}

// Mining calls eth_mining.
func (g *Geth) Mining(ctx context.Context) (bool, error) {
	var mining bool
	err := g.call(ctx, &mining, "eth_mining")
	return mining, err
}

// CanSign signs one zero byte with addr (eth_sign, with Ethereum's message
// prefix) and throws the signature away.
func (g *Geth) CanSign(ctx context.Context, addr common.Address) bool {
	var sig hexutil.Bytes
	return g.call(ctx, &sig, "eth_sign", addr, hexutil.Bytes{0}) == nil && len(sig) == 65
}

// MarkSynced starts m's miner with relay as its etherbase and stops it again
// once it runs. On geth 1.13 starting the miner marks the node synced, so it
// imports blocks its peers gossip instead of dropping them until its first
// sync from a peer that is ahead; relay must be an account in the client's
// keystore that is not a Clique signer, so nothing is sealed meanwhile.
func MarkSynced(ctx context.Context, m Miner, relay common.Address) error {
	if err := StopMiner(ctx, m); err != nil {
		return err
	}
	if err := m.SetEtherbase(ctx, relay); err != nil {
		return err
	}
	if err := m.StartMining(ctx); err != nil {
		return err
	}
	// miner_start returns before the miner starts (go miner.Start()): wait
	// until it runs, or the stop could come first and the start after it,
	// leaving a miner authorised with the relay account. During a sync the
	// miner waits, so the wait is bounded.
	for i := 0; i < 50; i++ {
		if on, err := m.Mining(ctx); err == nil && on {
			break
		}
		if !ctxtime.Sleep(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
	return StopMiner(ctx, m)
}

// StopMiner stops m's miner and waits until eth_mining says it stopped.
func StopMiner(ctx context.Context, m Miner) error {
	for range 50 {
		if err := m.StopMining(ctx); err != nil {
			return err
		}
		on, err := m.Mining(ctx)
		if err != nil {
			return err
		}
		if !on {
			return nil
		}
		if !ctxtime.Sleep(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
	}
	return errors.New("ethclient: the miner does not stop")
}

// StartSealing makes signer the etherbase and starts the miner. geth
// authorises Clique with the etherbase only when its miner is not running,
// hence the stop first. geth unlocks --unlock accounts only after its RPC is
// up, and a seal that fails for a locked key is not retried until the next
// block or transaction, so this refuses until the key is unlocked.
func StartSealing(ctx context.Context, m Miner, signer common.Address) error {
	// The stop first also tells a client without the miner API
	// (ErrMethodNotFound) from a key not unlocked yet.
	if err := StopMiner(ctx, m); err != nil {
		return err
	}
	if !m.CanSign(ctx, signer) {
		return errors.New("ethclient: the signer account is not unlocked yet")
	}
	if err := m.SetEtherbase(ctx, signer); err != nil {
		return err
	}
	return m.StartMining(ctx)
}
