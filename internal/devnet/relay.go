package devnet

import (
	"context"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/ethereum/go-ethereum/common"
)

// Why a relay account, and why signers do not start with --mine.
//
// geth 1.13 drops every block gossiped to it until it counts itself synced
// (eth/handler.go: "Syncing, discarded propagated block"), and it becomes
// synced only after a sync from a peer that is ahead, which with fewer than
// five peers it tries only on a 10-second timer, or when its miner starts
// (eth.StartMining). On a new chain nobody is ahead, so the first blocks
// never cross a member boundary: the signers seal forks of their own and
// stall until the timers fire; after a restart a node at an older head
// drops the next block the same way.
//
// So every node is made synced at start by starting its miner and stopping
// it at once, with an etherbase that is not a signer (Clique refuses to seal
// for it, so nothing is sealed in that moment). Its key sits in the node's
// own keystore and is never unlocked. A signer is switched to its signer
// account (miner_setEtherbase) and started for good by the monitor once it
// is peered and at the head, so it never seals on a parent the others have
// moved past.

// prepareKeystore fills dir: a relay account (created once) and, for a
// signer, a copy of its encrypted signer key. It returns the relay account.
// It is what `agent init --keystore --signer-keystore` does in a deployment.
func (n *gethNode) prepareKeystore(dir string) (common.Address, error) {
	if n.isSigner() {
		if err := agent.CopyKeystore(n.env.path(n.spec.Keystore), dir); err != nil {
			return common.Address{}, err
		}
	}
	return agent.RelayAccount(dir)
}

// miner dials the node's IPC socket for the miner calls.
func (n *gethNode) miner(ctx context.Context) (*ethclient.Geth, error) {
	return ethclient.Dial(ctx, ethclient.Config{Endpoint: n.ipcPath, CallTimeout: 5 * time.Second})
}

// markSynced starts and stops the miner with the relay etherbase.
func (n *gethNode) markSynced(ctx context.Context, relay common.Address) error {
	g, err := n.miner(ctx)
	if err != nil {
		return err
	}
	defer g.Close()
	return ethclient.MarkSynced(ctx, g, relay)
}

// startSealing makes the signer account the etherbase and starts the miner
// (ethclient.StartSealing: only once geth has unlocked the key).
func (n *gethNode) startSealing(ctx context.Context) error {
	g, err := n.miner(ctx)
	if err != nil {
		return err
	}
	defer g.Close()
	if err := ethclient.StartSealing(ctx, g, *n.spec.Signer); err != nil {
		return err
	}
	n.mu.Lock()
	n.sealing = true
	n.mu.Unlock()
	return nil
}
