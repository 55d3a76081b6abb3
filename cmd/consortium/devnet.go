package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/devnet"
	"github.com/ethereum/go-ethereum/common"
)

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ";") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func runDevnet(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "add-member" {
		return runDevnetAddMember(ctx, e, args[1:])
	}
	fs := newFlags(e, "devnet")
	consensus := fs.String("consensus", "", "chain of a NEW consortium: bft (CometBFT on geth "+devnet.GethVersion(devnet.BFT)+") or clique (geth "+devnet.GethVersion(devnet.Clique)+"); default bft, or what a reused --dir holds")
	members := fs.String("members", "", "comma-separated members of a NEW consortium (default a,b,c,d; a,b,c for clique); a reused --dir keeps its own")
	var nodes listFlag
	fs.Var(&nodes, "nodes", `what each member runs, e.g. "validator,tx,public" (no bootnode), or for one member "a:bootnode,validator=2,public"; repeatable (default bootnode,validator,tx,public)`)
	period := fs.Uint64("period", 0, "block period in seconds of a NEW consortium: BFT target block time (default 1) or Clique period (default 2)")
	dir := fs.String("dir", devnet.DefaultDir, "work directory: the consortium, the nodes' data and logs; reused when it holds one")
	geth := fs.String("geth", "", "geth binary, v1.17.x for bft, v1.13.x for clique (default: build it once into the cache, "+devnet.GethPath("~/.cache/consortium", devnet.BFT)+" or "+devnet.GethVersion(devnet.Clique)+"'s)")
	chainID := fs.Uint64("chain-id", 0, "chain id of a new consortium (default random)")
	prefund := fs.String("prefund", "", "comma-separated addresses funded in a new consortium's genesis")
	registrar := fs.String("registrar-listen", devnet.DefaultRegistrarListen, "the registrar's address")
	basePort := fs.Int("base-port", devnet.DefaultBasePort, "first node port: devp2p from here, HTTP RPC from +500, Engine API from +1000")
	ttl := fs.Duration("ttl", devnet.DefaultTTL, "the registrar's lease on node records")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (consortium devnet [flags] | consortium devnet add-member NAME)", errUsage, fs.Arg(0))
	}
	n, err := devnet.ParseNodes(nodes)
	if err != nil {
		return err
	}
	var mode devnet.Consensus
	if *consensus != "" {
		if mode, err = devnet.ParseConsensus(*consensus); err != nil {
			return err
		}
	}
	cfg := devnet.Config{
		Dir: *dir, Consensus: mode, Members: splitList(*members), Nodes: n, Period: *period, ChainID: *chainID,
		Geth: *geth, RegistrarListen: *registrar, BasePort: *basePort, TTL: *ttl, Out: e.stdout,
	}
	// A member joining a BFT devnet is voted in with this very binary's
	// `member propose` and `member vote`.
	if exe, err := os.Executable(); err == nil {
		cfg.CLI = exe
	}
	for _, a := range splitList(*prefund) {
		if !common.IsHexAddress(a) {
			return fmt.Errorf("%w: --prefund %q is not an address: give 0x-prefixed 40-hex-digit addresses, comma-separated", errUsage, a)
		}
		cfg.Prefund = append(cfg.Prefund, common.HexToAddress(a))
	}
	d, err := devnet.Start(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			fmt.Fprintln(e.stdout, "interrupted; everything started was stopped")
			return nil
		}
		return err
	}
	<-ctx.Done()
	fmt.Fprintln(e.stdout, "stopping the devnet...")
	return d.Close()
}

func runDevnetAddMember(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "devnet add-member")
	dir := fs.String("dir", devnet.DefaultDir, "work directory of the running devnet")
	nodes := fs.String("nodes", "", `what the new member runs, e.g. "validator,tx,public" (default bootnode,validator,tx,public; on a BFT chain the validators vote its validator into the set)`)
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: consortium devnet add-member [--dir DIR] [--nodes ROLES] NAME", errUsage)
	}
	start := time.Now()
	if err := devnet.AddMember(ctx, *dir, fs.Arg(0), *nodes, e.stdout); err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("interrupted; the running devnet carries on with the join")
		}
		return err
	}
	took := time.Since(start).Round(100 * time.Millisecond)
	if mode, _ := devnet.ReadConsensus(*dir); mode == devnet.BFT {
		fmt.Fprintf(e.stdout, "member %s joined: voted into the validator set, its validator signs blocks (%s)\n", fs.Arg(0), took)
		return nil
	}
	fmt.Fprintf(e.stdout, "member %s joined and seals blocks (%s)\n", fs.Arg(0), took)
	return nil
}
