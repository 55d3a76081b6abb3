package devnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// A member that joins a BFT devnet starts as CometBFT full nodes: its
// validator key is in no validator set, so its validator node follows the
// chain like its other nodes and votes on nothing. Once they follow, the
// validators vote its key into the set (bft_vote.go): a decision of the
// validators on chain (issue 21), which the devnet only plays out.

// useCometGenesis gives every CometBFT home of mem the consortium's
// CometBFT genesis in place of the one init made for mem alone.
func (d *Devnet) useCometGenesis(mem consortiuminit.Member) error {
	genesis, err := os.ReadFile(filepath.Join(d.dir, filepath.FromSlash(d.manifest.CometGenesis)))
	if err != nil {
		return fmt.Errorf("reading the consortium's CometBFT genesis: %w", err)
	}
	for _, n := range mem.Nodes {
		if n.CometHome == "" {
			continue
		}
		path := filepath.Join(d.dir, filepath.FromSlash(n.CometHome), "config", "genesis.json")
		if err := os.WriteFile(path, genesis, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// followBFT starts a new member's nodes and waits until every one of its
// geth nodes holds the head the chain had when they started and keeps up
// with it.
func (d *Devnet) followBFT(ctx context.Context, name string, specs []nodeSpec, say func(string, ...any)) error {
	if err := d.startNodes(ctx, specs); err != nil {
		return err
	}
	if err := d.saveState(); err != nil {
		return err
	}
	target := d.Stats().Head
	say("started %d nodes of %s: CometBFT full nodes until the validators vote its validator in; waiting for them to reach block %d", len(specs), name, target)
	ctx, cancel := context.WithTimeout(ctx, JoinTimeout)
	defer cancel()
	start := time.Now()
	waiting := d.newGethNodes(name)
	for len(waiting) > 0 {
		var still []*gethNode
		for _, n := range waiting {
			var head hexutil.Uint64
			if err := callIPC(ctx, n.ipcPath, &head, "eth_blockNumber"); err != nil || uint64(head) < target {
				still = append(still, n)
				continue
			}
			say("%-16s follows the final chain: block %d, %.1fs after its start", n.spec.Label(), head, time.Since(start).Seconds())
		}
		waiting = still
		if len(waiting) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%s: %s)", ErrFollowTimeout, name, d.followDiagnosis(waiting))
		case <-time.After(pollEvery):
		}
	}
	say("%s's nodes follow the final chain; now the validators vote on its validator", name)
	return nil
}

// newGethNodes are member's geth nodes.
func (d *Devnet) newGethNodes(member string) []*gethNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*gethNode
	for _, n := range d.nodes {
		if n.spec.Member == member {
			out = append(out, n)
		}
	}
	return out
}

// followDiagnosis says, for a join that timed out, where each node that
// did not catch up stands: its geth head against the best, its geth peers,
// and its consensus node's height and peers.
func (d *Devnet) followDiagnosis(nodes []*gethNode) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	best := d.Stats().Head
	var parts []string
	for _, n := range nodes {
		var (
			head  hexutil.Uint64
			peers []struct{}
		)
		errHead := callIPC(ctx, n.ipcPath, &head, "eth_blockNumber")
		errPeers := callIPC(ctx, n.ipcPath, &peers, "admin_peers")
		if errHead != nil || errPeers != nil {
			parts = append(parts, fmt.Sprintf("%s: geth: %v %v", n.spec.Label(), errHead, errPeers))
			continue
		}
		cons := "no consensus node running"
		if st, ok := n.consensusStatus(); ok {
			cons = fmt.Sprintf("consensus at height %d with %d CometBFT peers", st.Height, st.Peers)
		}
		parts = append(parts, fmt.Sprintf("%s: geth head %d of %d, %d geth peers, %s", n.spec.Label(), head, best, len(peers), cons))
	}
	return strings.Join(parts, "; ")
}
