package devnet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
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
func (n *gethNode) prepareKeystore(dir string) (common.Address, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return common.Address{}, err
	}
	var signer common.Address
	if n.isSigner() {
		signer = *n.spec.Signer
		src := n.env.path(n.spec.Keystore)
		entries, err := os.ReadDir(src)
		if err != nil {
			return common.Address{}, fmt.Errorf("signer keystore: %w", err)
		}
		for _, e := range entries {
			dst := filepath.Join(dir, e.Name())
			if _, err := os.Stat(dst); err == nil {
				continue
			}
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				return common.Address{}, err
			}
			if err := os.WriteFile(dst, b, 0o600); err != nil {
				return common.Address{}, err
			}
		}
	}
	return relayAccount(dir, signer)
}

// relayAccount returns the account in dir other than skip, creating one
// (with an empty password: it is never unlocked) when there is none.
func relayAccount(dir string, skip common.Address) (common.Address, error) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "UTC--") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var k struct{ Address string }
		if json.Unmarshal(b, &k) == nil && common.IsHexAddress(k.Address) && common.HexToAddress(k.Address) != skip {
			return common.HexToAddress(k.Address), nil
		}
	}
	acct, err := keystore.StoreKey(dir, "", keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		return common.Address{}, fmt.Errorf("relay account: %w", err)
	}
	return acct.Address, nil
}

// markSynced starts and stops the miner with the relay etherbase.
func (n *gethNode) markSynced(ctx context.Context) error {
	if err := callIPC(ctx, n.ipcPath, nil, "miner_start"); err != nil {
		return err
	}
	// miner_start returns before the miner starts (go miner.Start()): wait
	// until it runs, or a stop could come first and the start after it,
	// leaving a miner authorised with the relay account. (During a sync
	// the miner waits, so this wait is bounded.)
	for i := 0; i < 50 && !n.mining(ctx); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return n.stopMiner(ctx)
}

// stopMiner stops the miner and waits until eth_mining says so.
func (n *gethNode) stopMiner(ctx context.Context) error {
	for range 50 {
		if err := callIPC(ctx, n.ipcPath, nil, "miner_stop"); err != nil {
			return err
		}
		if !n.mining(ctx) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("the miner does not stop")
}

func (n *gethNode) mining(ctx context.Context) bool {
	var mining bool
	return callIPC(ctx, n.ipcPath, &mining, "eth_mining") == nil && mining
}

// startSealing makes the signer account the etherbase and starts the
// miner. geth authorises Clique with the etherbase (unlocked at start)
// only when its miner is not running, hence the stop first.
//
// geth unlocks --unlock accounts only after its RPC is up, and a seal that
// fails for a locked key is not retried until the next block or
// transaction, which on a quiet chain of one signer never comes: so this
// waits for the unlock first.
func (n *gethNode) startSealing(ctx context.Context) error {
	if !n.signerUnlocked(ctx) {
		return errors.New("signer account not unlocked yet")
	}
	if err := n.stopMiner(ctx); err != nil {
		return err
	}
	if err := callIPC(ctx, n.ipcPath, nil, "miner_setEtherbase", *n.spec.Signer); err != nil {
		return err
	}
	if err := callIPC(ctx, n.ipcPath, nil, "miner_start"); err != nil {
		return err
	}
	n.mu.Lock()
	n.sealing = true
	n.mu.Unlock()
	return nil
}

// signerUnlocked reports whether geth has unlocked the signer account:
// eth_sign answers only for an unlocked key (the personal namespace, which
// would say so directly, is off in geth 1.13). The signature, of one zero
// byte with Ethereum's message prefix, is thrown away.
func (n *gethNode) signerUnlocked(ctx context.Context) bool {
	var sig hexutil.Bytes
	return callIPC(ctx, n.ipcPath, &sig, "eth_sign", *n.spec.Signer, hexutil.Bytes{0}) == nil && len(sig) == 65
}
