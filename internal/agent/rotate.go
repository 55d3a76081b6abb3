package agent

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"slices"
	"time"

	"github.com/consortium/consortium/internal/reconcile"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Why a new node key is taken on in place.
//
// An operator rotates a node key by giving the client a new one and
// restarting it; the agent then finds the client running another node ID.
// Stopping there (the agent's old rule, still the rule without KeyFile)
// would take the consensus process that runs in the agent's process down
// with it, and with a public node the consensus traffic of its whole
// member. So the agent reads its key file again; when it holds the
// client's new key, the agent becomes that node: it registers the new
// record at once, deletes the old one (nobody runs that ID any more, and
// its lease would keep it in every answer, a dead peer dialled in vain, for
// up to a lease), and goes on with its peer set, its consensus process
// and its connections. A key file that does not hold the client's key is
// the old misconfiguration, and stops the agent with the same error.

// identity is the node key the agent signs with and its node ID. It is
// replaced whole (rotate), and read from every goroutine.
type identity struct {
	key *ecdsa.PrivateKey
	id  enode.ID
}

func newIdentity(k *ecdsa.PrivateKey) *identity {
	return &identity{key: k, id: enode.PubkeyToIDV4(&k.PublicKey)}
}

// nodeID is the node's current ID.
func (a *Agent) nodeID() enode.ID { return a.self.Load().id }

// nodeKey is the node's current key.
func (a *Agent) nodeKey() *ecdsa.PrivateKey { return a.self.Load().key }

// mismatch is the error for a client that runs another key than ours.
func (a *Agent) mismatch(running enode.ID, why string) error {
	return fmt.Errorf("the client runs node %s but the agent's key is node %s%s: give both the same --nodekey", running, a.nodeID(), why)
}

// rotate takes on the key the client now runs (node running), read from
// KeyFile, or returns why it cannot. Called from the main loop only.
func (a *Agent) rotate(running enode.ID) error {
	if a.cfg.KeyFile == "" {
		return a.mismatch(running, "")
	}
	k, err := crypto.LoadECDSA(a.cfg.KeyFile)
	if err != nil {
		return a.mismatch(running, fmt.Sprintf(" (reading %s again: %v)", a.cfg.KeyFile, err))
	}
	next := newIdentity(k)
	if next.id != running {
		return a.mismatch(running, fmt.Sprintf(" and %s holds node %s", a.cfg.KeyFile, next.id))
	}
	old := a.nodeID()
	a.self.Store(next)
	a.mu.Lock()
	a.registered = false
	// A higher seq than any record of ours so far: a key rotated back to
	// one used before finds that ID's record deleted at a lower seq.
	a.seq = max(a.seq+1, uint64(time.Now().UnixMilli()))
	// A key rotated back before its old record was deleted is ours again.
	a.retired = slices.DeleteFunc(a.retired, func(r enode.ID) bool { return r == running })
	if !slices.Contains(a.retired, old) {
		a.retired = append(a.retired, old)
	}
	// The new ID's answer has its own ETag; ask for it at once.
	a.index, a.etag = 0, ""
	a.health.NodeID = running.String()
	cancel := a.watchCancel
	a.mu.Unlock()
	// Every peer is new to the new ID, as the new ID is to every peer:
	// the dial stagger counts from now, on both sides.
	a.since = reconcile.Since{}
	a.proofs.sigFor, a.proofs.sig = common.Address{}, "" // the coinbase signed for the old ID
	if cancel != nil {
		cancel() // the watch in flight asks for the old ID's answer
	}
	a.log.Info("the client runs a new node key: registering it, removing the old record", "old", old, "new", running)
	return nil
}

// removeRetired deletes the records of the node's former IDs. One the
// registrar no longer has (404) is gone already; an unreachable registrar
// leaves it for the next call, and its lease runs out meanwhile.
func (a *Agent) removeRetired(ctx context.Context) {
	a.mu.Lock()
	ids := slices.Clone(a.retired)
	a.mu.Unlock()
	for _, id := range ids {
		cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
		err := a.cfg.Registrar.Remove(cctx, id.String())
		cancel()
		a.registrarResult(err)
		switch {
		case err == nil:
			a.log.Info("removed the record of the former node key", "node", id)
		case registrarclient.IsStatus(err, 404):
		case registrarDown(err):
			return
		default:
			a.log.Warn("removing the record of the former node key failed; its lease runs out instead", "node", id, "err", err)
		}
		a.mu.Lock()
		a.retired = slices.DeleteFunc(a.retired, func(r enode.ID) bool { return r == id })
		a.mu.Unlock()
	}
}
