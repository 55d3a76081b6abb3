package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/consortium/consortium/internal/devnet"
	"github.com/ethereum/go-ethereum/common"
)

func runInit(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "init")
	members := fs.String("members", "", "comma-separated member names, e.g. acme,globex,initech (required)")
	consensus := fs.String("consensus", string(consortiuminit.DefaultConsensus),
		`"bft": CometBFT over geth 1.17, one validator per member, final blocks; "clique": legacy geth 1.13 Clique`)
	out := fs.String("out", consortiuminit.DefaultOut, "directory to write; must be new or empty unless --force")
	chainID := fs.Uint64("chain-id", 0, "chain id (default: random, from 100000000 to 2147483646)")
	period := fs.Uint64("period", consortiuminit.DefaultPeriod, "Clique block period in seconds (--consensus clique only)")
	prefund := fs.String("prefund", "", "comma-separated addresses funded in the genesis (the fee recipients or signers always are)")
	nodes := fs.String("nodes", "", `nodes per member, e.g. "bootnode=2,validator,tx,public" (default one of each role)`)
	dnsDomain := fs.String("dns-domain", consortiuminit.DefaultDNSDomain, "the node trees' domain, as the registrar's --dns-domain: each member's --discovery.dns flag names <member>.nodes.<it>")
	force := fs.Bool("force", false, "replace what an earlier init wrote in --out (other files are left alone)")
	show := fs.Bool("show-credentials", false, "also print the administrator's and members' credentials (secrets) on stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (members go in --members a,b,c)", errUsage, fs.Arg(0))
	}
	if strings.TrimSpace(*members) == "" {
		return fmt.Errorf("%w: --members is required, e.g. --members acme,globex,initech", errUsage)
	}
	kind, err := consortiuminit.ParseConsensus(*consensus)
	if err != nil {
		return fmt.Errorf("%w: --consensus: %v", errUsage, err)
	}
	cfg := consortiuminit.Config{
		Consensus: kind, Members: splitList(*members), Out: *out, ChainID: *chainID, Force: *force, DNSDomain: *dnsDomain,
	}
	switch {
	case kind == consortiuminit.ConsensusClique:
		cfg.Period = *period
	case flagSet(fs, "period"):
		return fmt.Errorf("%w: --period is Clique's block period: BFT's block time is the consensus process's setting (drop --period, or add --consensus clique)", errUsage)
	}
	if *period == 0 {
		return fmt.Errorf("%w: --period must be 1 second or more", errUsage)
	}
	for _, a := range splitList(*prefund) {
		if !common.IsHexAddress(a) {
			return fmt.Errorf("%w: --prefund %q is not an address: give 0x-prefixed 40-hex-digit addresses, comma-separated", errUsage, a)
		}
		cfg.Prefund = append(cfg.Prefund, common.HexToAddress(a))
	}
	if *nodes != "" {
		n, err := devnet.ParseNodes([]string{*nodes})
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
	if *show {
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

// flagSet reports whether the command line gave the flag name.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
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
