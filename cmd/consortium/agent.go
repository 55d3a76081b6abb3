package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/agent/agentcli"
	"github.com/consortium/consortium/internal/cliflags"
	"github.com/urfave/cli/v3"
)

// agentCommand is `consortium agent`: init writes a client's cold-start
// config, run keeps its peers live (internal/agent/agentcli; with the
// consensus process of a BFT node here).
func agentCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:   "agent",
		Usage:  "init: write a client's cold-start config; run: keep its peers live",
		Action: group(e),
		Commands: []*cli.Command{
			{
				Name: "init", Usage: "write a client's cold-start config (config.toml, geth.flags) from the registrar's answer",
				Flags:  agentInitFlags(e),
				Action: func(ctx context.Context, cmd *cli.Command) error { return runAgentInit(ctx, e, cmd) },
			},
			{
				Name: "run", Usage: "keep the client's peers equal to the registrar's answer (and run a BFT node's consensus process)",
				Flags:  flags(agentcli.Flags(e.getenv), consensusFlagList(e)),
				Action: func(ctx context.Context, cmd *cli.Command) error { return runAgentRun(ctx, e, cmd) },
			},
		},
	}
}

func agentInitFlags(e *env) []cli.Flag {
	return flags(clientFlags(e, "credential", "member"), []cli.Flag{
		cliflags.String("role", "", "bootnode, validator, tx or public"),
		cliflags.String("nodekey", "nodekey", "node key file (created 0600 if missing)"),
		cliflags.String("state-dir", "agent-state", "where the last peer set is kept"),
		cliflags.String("config-out", "config.toml", "geth config.toml to write"),
		cliflags.String("p2p-listen", "", "geth [Node.P2P] ListenAddr, e.g. 127.0.0.1:30303"),
		cliflags.String("nat-ip", "", "IP for geth --nat extip:IP (default --nat none)"),
		cliflags.Duration("deadline", 60*time.Second, "how long to wait for the registrar"),
		cliflags.String("log-format", "text", "text or json"),
		cliflags.String("keystore", "", "geth's keystore directory: a relay account is created there for agent run --keystore (geth 1.13 Clique)"),
		cliflags.String("signer-keystore", "", "copy the key files of this directory into --keystore, so geth runs with one keystore"),
	})
}

func runAgentInit(ctx context.Context, e *env, cmd *cli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	role, key, state, out := cmd.String("role"), cmd.String("nodekey"), cmd.String("state-dir"), cmd.String("config-out")
	keystoreDir, signerKeys := cmd.String("keystore"), cmd.String("signer-keystore")
	if role == "" {
		return fmt.Errorf("%w: --role is required", errUsage)
	}
	if signerKeys != "" && keystoreDir == "" {
		return fmt.Errorf("%w: --signer-keystore needs --keystore (where to copy the keys)", errUsage)
	}
	if keystoreDir != "" {
		if signerKeys != "" {
			if err := agent.CopyKeystore(signerKeys, keystoreDir); err != nil {
				return err
			}
		}
		relay, err := agent.RelayAccount(keystoreDir)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "relay account %s in %s\n", relay.Hex(), keystoreDir)
	}
	log, err := newLogger(e.stderr, cmd.String("log-format"), "info")
	if err != nil {
		return err
	}
	rc, err := registrarClient(e, cmd)
	if err != nil {
		return err
	}
	res, err := agent.Init(ctx, agent.InitConfig{Registrar: rc, KeyPath: key, Role: role, StateDir: state, ConfigPath: out, ListenAddr: cmd.String("p2p-listen"), NATIP: cmd.String("nat-ip"), Deadline: cmd.Duration("deadline"), Logger: log})
	if err != nil {
		return err
	}
	if res.Source == "saved" {
		fmt.Fprintln(e.stderr, "registrar unreachable: wrote the LAST SAVED peer set")
	}
	log.Info("cold-start config written", "config", out, "node", res.NodeID, "static", len(res.Static), "bootnodes", len(res.Bootnodes), "source", res.Source)
	lines, quoted := gethFlagLines(res.Flags)
	fmt.Fprintln(e.stdout, strings.Join(quoted, " "))
	return os.WriteFile(filepath.Join(filepath.Dir(out), "geth.flags"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// gethFlagLines turns agent.Init's flag/value pairs into --flag=value
// words: one a line for geth.flags, which `geth $(cat geth.flags)` splits
// on white space, and shell-quoted where needed for the line printed. An
// empty value (--bootnodes with no bootnode registered yet) stays with its
// flag: as two words it vanished in the split and the flag took the next
// one ("--nat") as its value.
func gethFlagLines(flags []string) (lines, quoted []string) {
	for i := 0; i+1 < len(flags); i += 2 {
		l := flags[i] + "=" + flags[i+1]
		lines = append(lines, l)
		if strings.ContainsAny(flags[i+1], " '\"$`\\") {
			l = "'" + strings.ReplaceAll(l, "'", `'\''`) + "'"
		}
		quoted = append(quoted, l)
	}
	return lines, quoted
}

func runAgentRun(ctx context.Context, e *env, cmd *cli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	r, err := agentcli.ReadFlags(cmd).Check(e.stderr, e.getenv)
	if err != nil {
		return err
	}
	cons, err := readConsensusFlags(cmd).check(r.Config.AdvertiseIP)
	if err != nil {
		return err
	}
	var hook agentcli.Hook
	if cons != nil {
		hook = func(ctx context.Context, cfg *agent.Config, fail func(error)) (func(), error) {
			rc, err := startConsensus(ctx, cons, r.Log, cfg.Metrics, cfg, fail)
			if err != nil {
				return nil, err
			}
			return func() { rc.stop(r.Log) }, nil
		}
	}
	return agentcli.Serve(ctx, r, hook)
}
