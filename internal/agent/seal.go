package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
)

// Why an agent starts its signer, and why it starts every miner once.
//
// geth 1.13 drops every block gossiped to it until it counts itself synced
// (eth/handler.go: "Syncing, discarded propagated block"), and it becomes
// synced only after a sync from a peer that is ahead, which with fewer than
// five peers it tries only on a 10-second timer, or when its miner starts
// (eth.StartMining). On a new chain nobody is ahead: if every signer runs
// with --mine, each seals its own block 1 at once, the transaction and
// public nodes between them drop the other members' blocks, and the chain
// can stall at its first blocks (seen in the compose consortium: a public
// node at genesis for five minutes, "discarded propagated block number=1").
//
// So, with Config.Relay set, the agent makes its node synced each time the
// client (re)starts, by starting and at once stopping the miner with an
// etherbase that is not a signer (Clique refuses to seal for it, so nothing
// is sealed meanwhile). And with Config.Seal set (geth started without
// --mine) it starts sealing only once the node is ready: every peer of its
// set connected, its member's public nodes peered with every other member's
// public node, and its head at the best head any node visible to the member
// reported (the registrar's node list), so it never seals on a parent the
// others have moved past; after Config.SealAnyway it seals regardless, so
// a member whose links do not come up cannot stop the chain.

// sealState is the agent's view of its client's miner. mainLoop owns it.
type sealState struct {
	relayDone bool      // the node was marked synced since the client started
	sealing   bool      // miner_start was called with the signer etherbase
	since     time.Time // the gate has been closed since
	nextCheck time.Time // the registrar's node list is read again after
	noMiner   bool      // the client has no miner API: stop trying
	lastWhy   string    // the last reason the gate stayed closed, logged on change
}

// sealGate decides whether a signer may start sealing.
type sealGate struct {
	// LocalMesh: every peer of the node's set is connected (and it has one).
	LocalMesh bool
	Head      uint64
	Syncing   bool
	// Nodes is GET /v1/nodes with the member's credential: its own nodes in
	// full, other members' live public nodes by their public side.
	Nodes []api.NodeView
}

// ready reports whether the gate is open and, when it is not, why.
func (g sealGate) ready() (bool, string) {
	if !g.LocalMesh {
		return false, "not every peer of the set is connected"
	}
	if g.Syncing {
		return false, "syncing"
	}
	var best uint64
	var own, foreign []api.NodeView
	for _, n := range g.Nodes {
		if !n.Live {
			continue
		}
		if n.Status != nil {
			best = max(best, n.Status.Head)
		}
		if n.Role != "public" {
			continue
		}
		if n.Enode != "" {
			own = append(own, n) // a member sees its own nodes in full
		} else {
			foreign = append(foreign, n)
		}
	}
	if g.Head < best {
		return false, fmt.Sprintf("head %d behind the best reported head %d", g.Head, best)
	}
	for _, p := range own {
		peers := map[string]bool{}
		if p.Status != nil {
			for _, id := range p.Status.PeerIDs {
				peers[id] = true
			}
		}
		for _, f := range foreign {
			if !peers[f.ID] {
				return false, fmt.Sprintf("public node %.12s not yet peered with %s's public node %.12s", p.ID, f.Member, f.ID)
			}
		}
	}
	return true, ""
}

// sealStep runs after each reconcile. It marks the node synced once per
// client start and opens the sealing gate; it returns when to look again
// (0: nothing to wait for).
func (a *Agent) sealStep(ctx context.Context, restarted bool) time.Duration {
	zero := common.Address{}
	if a.cfg.Relay == zero && a.cfg.Seal == zero {
		return 0
	}
	m, ok := a.cfg.Client.(ethclient.Miner)
	s := &a.seal
	if !ok || s.noMiner {
		return 0
	}
	now := a.now()
	if restarted || s.since.IsZero() {
		s.relayDone, s.sealing, s.since, s.nextCheck, s.lastWhy = false, false, now, time.Time{}, ""
	}
	if a.cfg.Relay != zero && !s.relayDone {
		err := ethclient.MarkSynced(ctx, m, a.cfg.Relay)
		switch {
		case errors.Is(err, ethclient.ErrMethodNotFound):
			a.log.Warn("the client has no miner API; not marking it synced or sealing", "err", err)
			s.noMiner = true
			return 0
		case err != nil:
			a.log.Warn("marking the client synced failed; retrying", "err", err)
			return a.cfg.RetryMax
		}
		s.relayDone = true
		a.log.Info("client marked synced (miner started and stopped with the relay account)", "relay", a.cfg.Relay)
	}
	if a.cfg.Seal == zero {
		return 0
	}
	if s.sealing {
		// A client restarted between two ticks comes back without its miner.
		if on, err := m.Mining(ctx); err != nil || on {
			return 0
		}
		a.log.Warn("the signer stopped sealing (client restarted?); waiting to start it again")
		s.sealing, s.since, s.lastWhy = false, now, ""
	}
	if now.Before(s.nextCheck) {
		return s.nextCheck.Sub(now)
	}
	s.nextCheck = now.Add(a.cfg.SealCheck)
	ready, why := a.readyToSeal(ctx)
	late := now.Sub(s.since) > a.cfg.SealAnyway
	if !ready && !late {
		if why != s.lastWhy {
			a.log.Info("not sealing yet", "why", why)
			s.lastWhy = why
		}
		return a.cfg.SealCheck
	}
	if err := ethclient.StartSealing(ctx, m, a.cfg.Seal); err != nil {
		if errors.Is(err, ethclient.ErrMethodNotFound) {
			a.log.Warn("the client has no miner API: --seal is for Clique signers on geth 1.13; not sealing", "err", err)
			s.noMiner = true
			return 0
		}
		a.log.Warn("starting the signer failed; retrying", "err", err)
		return a.cfg.SealCheck
	}
	s.sealing = true
	a.m.sealStarts.Inc()
	// The etherbase is the signer now: report it (with its proof) at once,
	// even if an earlier status found no etherbase and stopped asking.
	a.mu.Lock()
	a.noCoinbase, a.renewNow = false, true
	a.mu.Unlock()
	a.wake()
	if ready {
		a.log.Info("sealing (miner_start): peered and at the head", "signer", a.cfg.Seal)
	} else {
		a.log.Warn("sealing (miner_start) without the full mesh", "signer", a.cfg.Seal, "after", a.cfg.SealAnyway, "why", why)
	}
	return 0
}

// readyToSeal gathers the gate's inputs.
func (a *Agent) readyToSeal(ctx context.Context) (bool, string) {
	g := sealGate{LocalMesh: a.meshComplete()}
	if !g.LocalMesh {
		return g.ready()
	}
	var err error
	if g.Head, err = a.cfg.Client.HeadBlock(ctx); err != nil {
		return false, "client: " + err.Error()
	}
	if g.Syncing, err = a.cfg.Client.Syncing(ctx); err != nil {
		return false, "client: " + err.Error()
	}
	if a.regOutage.isDown() {
		return false, "registrar unreachable" // the watch loop probes it
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
	defer cancel()
	g.Nodes, err = a.cfg.Registrar.Nodes(cctx)
	a.registrarResult(err)
	if err != nil {
		return false, "registrar: " + err.Error()
	}
	return g.ready()
}

// relayMarker names the file in the keystore directory that holds the relay
// account's address. geth's keystore skips names that start with a dot.
const relayMarker = ".consortium-relay"

// RelayAccount returns the relay account of the keystore dir, creating it
// (with an empty password: it is never unlocked) when there is none. It is
// the etherbase the agent marks geth synced with, so it must never be a
// signer: it is a fresh key, remembered by address in dir/.consortium-relay
// so a signer key in the same keystore is never taken for it.
func RelayAccount(dir string) (common.Address, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return common.Address{}, fmt.Errorf("relay account: %w", err)
	}
	marker := filepath.Join(dir, relayMarker)
	if b, err := os.ReadFile(marker); err == nil {
		s := strings.TrimSpace(string(b))
		if !common.IsHexAddress(s) {
			return common.Address{}, fmt.Errorf("relay account: %s does not hold an address: remove it and run agent init again", marker)
		}
		addr := common.HexToAddress(s)
		if hasKeyFile(dir, addr) {
			return addr, nil
		}
	}
	acct, err := keystore.StoreKey(dir, "", keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		return common.Address{}, fmt.Errorf("relay account: %w", err)
	}
	if err := os.WriteFile(marker, []byte(acct.Address.Hex()+"\n"), 0o600); err != nil {
		return common.Address{}, fmt.Errorf("relay account: %w", err)
	}
	return acct.Address, nil
}

// hasKeyFile reports whether dir holds a key file for addr.
func hasKeyFile(dir string, addr common.Address) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var k struct{ Address string }
		if json.Unmarshal(b, &k) == nil && common.IsHexAddress(k.Address) && common.HexToAddress(k.Address) == addr {
			return true
		}
	}
	return false
}

// CopyKeystore copies the key files of src into dst (skipping names dst
// has), so geth can run with one keystore holding the signer key and the
// relay account.
func CopyKeystore(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("signer keystore: %w", err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		to := filepath.Join(dst, e.Name())
		if _, err := os.Stat(to); err == nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			return fmt.Errorf("signer keystore: %w", err)
		}
		if err := os.WriteFile(to, b, 0o600); err != nil {
			return err
		}
	}
	return nil
}
