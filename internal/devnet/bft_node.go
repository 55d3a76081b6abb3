package devnet

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/consortium/consortium/internal/consensus"
	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// A BFT node is geth v1.17 with two companions in this process: its
// consensus node (CometBFT and the app that drives geth over the Engine
// API) and its agent. geth makes no block of its own here: every block,
// on validators and full nodes alike, arrives through the consensus node.

// startBFT launches geth (args: the flags every geth gets) with the Engine
// API secret, then the consensus node, then the agent.
func (n *gethNode) startBFT(ctx context.Context, args []string) error {
	state, err := n.stateFlags()
	if err != nil {
		return err
	}
	args = append(args, "--authrpc.jwtsecret", n.env.path(n.spec.JWTSecret))
	args = append(args, state...)
	if err := n.launch(ctx, args); err != nil {
		return err
	}
	if err := n.startConsensus(ctx); err != nil {
		n.stopGeth(syscall.SIGTERM)
		return err
	}
	return n.startAgent()
}

// cometHome is the node's CometBFT home, under its data directory.
func (n *gethNode) cometHome() string { return filepath.Join(filepath.Dir(n.dataDir), "cometbft") }

// startConsensus starts the node's consensus node. Its CometBFT home is
// copied from the consortium's on the first start, so what runs (the
// block store, the last-sign state) stays out of the files init wrote.
func (n *gethNode) startConsensus(ctx context.Context) error {
	home := n.cometHome()
	if _, err := os.Stat(home); os.IsNotExist(err) {
		if err := copyDir(n.env.path(n.spec.CometHome), home); err != nil {
			return fmt.Errorf("%w (%s: copying its CometBFT home: %v)", ErrNodeStart, n.spec.Label(), err)
		}
	}
	secret, err := consensus.LoadJWTSecret(n.env.path(n.spec.JWTSecret))
	if err != nil {
		return fmt.Errorf("%w (%s: %v)", ErrNodeStart, n.spec.Label(), err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(n.cmtPort)
	c, err := consensus.New(consensus.Config{
		Home: home, Moniker: n.spec.Label(), P2PListen: "tcp://" + addr, ExternalAddress: addr,
		EngineURL: "http://127.0.0.1:" + strconv.Itoa(n.auth), JWTSecret: secret,
		FeeRecipient: n.spec.FeeRecipient, BlockTime: n.env.blockTime,
		// A validator's RPC is its member's voice in the validator-set
		// vote (`consortium member propose|vote --consensus-rpc`).
		RPCListen: n.consensusRPC(),
		Logger:    n.log.With("part", "consensus"),
	})
	if err != nil {
		return fmt.Errorf("%w (%s: consensus: %v)", ErrNodeStart, n.spec.Label(), err)
	}
	// Start replays what geth lacks before it returns: after a crash that
	// can take a while, so it gets the whole start-up bound.
	sctx, cancel := context.WithTimeout(ctx, n.env.startTimeout)
	defer cancel()
	if err := c.Start(sctx); err != nil {
		c.Stop()
		return fmt.Errorf("%w (%s: consensus: %v; log: %s)", ErrNodeStart, n.spec.Label(), err, n.env.logPath)
	}
	n.mu.Lock()
	n.cons = c
	n.mu.Unlock()
	return nil
}

// stopConsensus stops the consensus node, if one runs.
func (n *gethNode) stopConsensus() {
	n.mu.Lock()
	c := n.cons
	n.cons = nil
	n.mu.Unlock()
	if c != nil {
		if err := c.Stop(); err != nil {
			n.log.Warn("stopping the consensus node", "err", err)
		}
	}
}

// consensusStatus is the consensus node's view of the chain, when it runs.
func (n *gethNode) consensusStatus() (consensus.Status, bool) {
	n.mu.Lock()
	c := n.cons
	n.mu.Unlock()
	if c == nil {
		return consensus.Status{}, false
	}
	return c.Status(), true
}

// settleBFT stops the validators' consensus first, so the chain stops at
// the height in progress, and gives the full nodes a moment to take its
// last block: a devnet started again on the directory then finds every
// geth at one head (CometBFT would replay a missing block anyway).
func settleBFT(nodes []*gethNode) {
	var wg sync.WaitGroup
	var running []*gethNode
	for _, n := range nodes {
		if _, up := n.running(); !up {
			continue
		}
		running = append(running, n)
		if n.spec.Role == consortiuminit.RoleValidator {
			wg.Go(n.stopConsensus)
		}
	}
	wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		heads := map[hexutil.Uint64]bool{}
		for _, n := range running {
			var h hexutil.Uint64
			if callIPC(ctx, n.ipcPath, &h, "eth_blockNumber") == nil {
				heads[h] = true
			}
		}
		if len(heads) <= 1 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// copyDir copies the directory src to dst, keeping file modes (the keys
// in a CometBFT home are 0600).
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		info, err := e.Info()
		if err != nil {
			return err
		}
		if e.IsDir() {
			return os.MkdirAll(to, info.Mode().Perm()|0o700)
		}
		return copyFile(path, to, info.Mode().Perm())
	})
}

func copyFile(src, dst string, mode fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
