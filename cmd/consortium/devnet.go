package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/devnet"
	"github.com/ethereum/go-ethereum/common"
	"github.com/urfave/cli/v3"
)

// listFlag is a flag that may be given more than once.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ";") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }
func (l *listFlag) Get() any           { return []string(*l) }

func devnetCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "devnet",
		Usage: "run a whole consortium on this machine (builds geth once); add-member NAME",
		Flags: []cli.Flag{
			cliflags.String("consensus", "", "chain of a NEW consortium: bft (CometBFT on geth "+devnet.GethVersion(devnet.BFT)+") or clique (geth "+devnet.GethVersion(devnet.Clique)+"); default bft, or what a reused --dir holds"),
			cliflags.String("members", "", "comma-separated members of a NEW consortium (default a,b,c,d; a,b,c for clique); a reused --dir keeps its own"),
			cliflags.Generic("nodes", &listFlag{}, `what each member runs, e.g. "validator,tx,public" (no bootnode), or for one member "a:bootnode,validator=2,public"; repeatable (default bootnode,validator,tx,public)`),
			cliflags.Uint64("period", 0, "block period in seconds of a NEW consortium: BFT target block time (default 1) or Clique period (default 2)"),
			cliflags.String("dir", devnet.DefaultDir, "work directory: the consortium, the nodes' data and logs; reused when it holds one"),
			cliflags.String("geth", "", "geth binary, v1.17.x for bft, v1.13.x for clique (default: build it once into the cache, "+devnet.GethPath("~/.cache/consortium", devnet.BFT)+" or "+devnet.GethVersion(devnet.Clique)+"'s)"),
			cliflags.Uint64("chain-id", 0, "chain id of a new consortium (default random)"),
			cliflags.String("prefund", "", "comma-separated addresses funded in a new consortium's genesis"),
			cliflags.String("registrar-listen", devnet.DefaultRegistrarListen, "the registrar's address"),
			cliflags.Int("base-port", devnet.DefaultBasePort, "first node port: devp2p from here, HTTP RPC from +500, Engine API from +1000"),
			cliflags.Duration("ttl", devnet.DefaultTTL, "the registrar's lease on node records"),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runDevnet(ctx, e, cmd) },
		Commands: []*cli.Command{{
			Name: "add-member", Usage: "add a member to the running devnet (on a BFT chain the validators vote its validator into the set)", ArgsUsage: "NAME",
			Flags: []cli.Flag{
				cliflags.String("dir", devnet.DefaultDir, "work directory of the running devnet"),
				cliflags.String("nodes", "", `what the new member runs, e.g. "validator,tx,public" (default bootnode,validator,tx,public; on a BFT chain the validators vote its validator into the set)`),
			},
			Action: func(ctx context.Context, cmd *cli.Command) error { return runDevnetAddMember(ctx, e, cmd) },
		}},
	}
}

func runDevnet(ctx context.Context, e *env, cmd *cli.Command) error {
	if cmd.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (consortium devnet [flags] | consortium devnet add-member NAME)", errUsage, cmd.Args().First())
	}
	n, err := devnet.ParseNodes(devnetNodes(cmd))
	if err != nil {
		return err
	}
	var mode devnet.Consensus
	if c := cmd.String("consensus"); c != "" {
		if mode, err = devnet.ParseConsensus(c); err != nil {
			return err
		}
	}
	cfg := devnet.Config{
		Dir: cmd.String("dir"), Consensus: mode, Members: splitList(cmd.String("members")), Nodes: n, Period: cmd.Uint64("period"), ChainID: cmd.Uint64("chain-id"),
		Geth: cmd.String("geth"), RegistrarListen: cmd.String("registrar-listen"), BasePort: cmd.Int("base-port"), TTL: cmd.Duration("ttl"), Out: e.stdout,
	}
	// A member joining a BFT devnet is voted in with this very binary's
	// `member propose` and `member vote`.
	if exe, err := os.Executable(); err == nil {
		cfg.CLI = exe
	}
	for _, a := range splitList(cmd.String("prefund")) {
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

// devnetNodes is every --nodes given, in order.
func devnetNodes(cmd *cli.Command) []string {
	nodes, _ := cmd.Value("nodes").([]string)
	return nodes
}

func runDevnetAddMember(ctx context.Context, e *env, cmd *cli.Command) error {
	if cmd.NArg() != 1 {
		return fmt.Errorf("%w: consortium devnet add-member [--dir DIR] [--nodes ROLES] NAME", errUsage)
	}
	dir, name := cmd.String("dir"), cmd.Args().First()
	start := time.Now()
	if err := devnet.AddMember(ctx, dir, name, cmd.String("nodes"), e.stdout); err != nil {
		if errors.Is(err, context.Canceled) {
			return errors.New("interrupted; the running devnet carries on with the join")
		}
		return err
	}
	took := time.Since(start).Round(100 * time.Millisecond)
	if mode, _ := devnet.ReadConsensus(dir); mode == devnet.BFT {
		fmt.Fprintf(e.stdout, "member %s joined: voted into the validator set, its validator signs blocks (%s)\n", name, took)
		return nil
	}
	fmt.Fprintf(e.stdout, "member %s joined and seals blocks (%s)\n", name, took)
	return nil
}
