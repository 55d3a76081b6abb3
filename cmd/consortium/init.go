package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/consortium/consortium/internal/devnet"
	"github.com/ethereum/go-ethereum/common"
	"github.com/urfave/cli/v3"
)

func initCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "create a consortium: genesis, validator and node keys, credentials, the registrar's seed",
		Flags: []cli.Flag{
			cliflags.String("members", "", "comma-separated member names, e.g. acme,globex,initech (required)"),
			cliflags.String("consensus", string(consortiuminit.DefaultConsensus), `"bft": CometBFT over geth 1.17, one validator per member, final blocks; "clique": legacy geth 1.13 Clique`),
			cliflags.String("out", consortiuminit.DefaultOut, "directory to write; must be new or empty unless --force"),
			cliflags.Uint64("chain-id", 0, "chain id (default: random, from 100000000 to 2147483646)"),
			cliflags.Uint64("period", consortiuminit.DefaultPeriod, "Clique block period in seconds (--consensus clique only)"),
			cliflags.String("prefund", "", "comma-separated addresses funded in the genesis (the fee recipients or signers always are)"),
			cliflags.String("nodes", "", `nodes per member, e.g. "bootnode=2,validator,tx,public" (default one of each role)`),
			cliflags.String("dns-domain", consortiuminit.DefaultDNSDomain, "the node trees' domain, as the registrar's --dns-domain: each member's --discovery.dns flag names <member>.nodes.<it>"),
			cliflags.Bool("force", false, "replace what an earlier init wrote in --out (other files are left alone)"),
			cliflags.Bool("show-credentials", false, "also print the administrator's and members' credentials (secrets) on stdout"),
		},
		Action: func(ctx context.Context, cmd *cli.Command) error { return runInit(ctx, e, cmd) },
	}
}

func runInit(ctx context.Context, e *env, cmd *cli.Command) error {
	if cmd.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (members go in --members a,b,c)", errUsage, cmd.Args().First())
	}
	members, period, nodes := cmd.String("members"), cmd.Uint64("period"), cmd.String("nodes")
	if strings.TrimSpace(members) == "" {
		return fmt.Errorf("%w: --members is required, e.g. --members acme,globex,initech", errUsage)
	}
	kind, err := consortiuminit.ParseConsensus(cmd.String("consensus"))
	if err != nil {
		return fmt.Errorf("%w: --consensus: %v", errUsage, err)
	}
	cfg := consortiuminit.Config{
		Consensus: kind, Members: splitList(members), Out: cmd.String("out"), ChainID: cmd.Uint64("chain-id"), Force: cmd.Bool("force"), DNSDomain: cmd.String("dns-domain"),
	}
	switch {
	case kind == consortiuminit.ConsensusClique:
		cfg.Period = period
	case cmd.IsSet("period"):
		return fmt.Errorf("%w: --period is Clique's block period: BFT's block time is the consensus process's setting (drop --period, or add --consensus clique)", errUsage)
	}
	if period == 0 {
		return fmt.Errorf("%w: --period must be 1 second or more", errUsage)
	}
	for _, a := range splitList(cmd.String("prefund")) {
		if !common.IsHexAddress(a) {
			return fmt.Errorf("%w: --prefund %q is not an address: give 0x-prefixed 40-hex-digit addresses, comma-separated", errUsage, a)
		}
		cfg.Prefund = append(cfg.Prefund, common.HexToAddress(a))
	}
	if nodes != "" {
		n, err := devnet.ParseNodes([]string{nodes})
		if err != nil {
			return err
		}
		if len(n.PerMember) > 0 {
			return fmt.Errorf("%w: init gives every member the same nodes: drop the \"member:\" prefix from --nodes", errUsage)
		}
		cfg.NodesPerMember = n.Default
	}
	res, err := consortiuminit.Run(cfg)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, res.String())
	if cmd.Bool("show-credentials") {
		admin, err := res.AdminCredential()
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "administrator credential (secret): %s\n", admin)
		for _, m := range res.Members {
			c, err := readSecret(res.Path(m.Credential))
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "member %s credential (secret): %s\n", m.Name, c)
		}
	}
	fmt.Fprintf(e.stderr, "next: consortium registrar --seed %s --data DIR, then give each member its members/<name>/ directory\n", res.Path(res.Seed))
	return nil
}

// splitList splits a comma-separated flag value, trimming spaces. An empty
// item is kept, so "a,,b" is refused as a bad name rather than read as "a,b".
func splitList(s string) []string {
	if strings.TrimSpace(s) == "" {
		return nil
	}
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
