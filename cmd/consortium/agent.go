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
)

func runAgent(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: consortium agent init|run [flags]", errUsage)
	}
	if isHelp(args[0]) {
		return subHelp(e, "consortium agent init|run [flags]", "consortium agent run -h")
	}
	switch args[0] {
	case "init":
		return runAgentInit(ctx, e, args[1:])
	case "run":
		return runAgentRun(ctx, e, args[1:])
	}
	return fmt.Errorf("%w: consortium agent init|run [flags]", errUsage)
}

func runAgentInit(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "agent init")
	cf := addClientFlags(e, fs, "credential", "member")
	role := fs.String("role", "", "bootnode, validator, tx or public")
	key := fs.String("nodekey", "nodekey", "node key file (created 0600 if missing)")
	state := fs.String("state-dir", "agent-state", "where the last peer set is kept")
	out := fs.String("config-out", "config.toml", "geth config.toml to write")
	listen := fs.String("p2p-listen", "", "geth [Node.P2P] ListenAddr, e.g. 127.0.0.1:30303")
	nat := fs.String("nat-ip", "", "IP for geth --nat extip:IP (default --nat none)")
	deadline := fs.Duration("deadline", 60*time.Second, "how long to wait for the registrar")
	logFormat := fs.String("log-format", "text", "text or json")
	keystoreDir := fs.String("keystore", "", "geth's keystore directory: a relay account is created there for agent run --keystore (geth 1.13 Clique)")
	signerKeys := fs.String("signer-keystore", "", "copy the key files of this directory into --keystore, so geth runs with one keystore")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *role == "" {
		return fmt.Errorf("%w: --role is required", errUsage)
	}
	if *signerKeys != "" && *keystoreDir == "" {
		return fmt.Errorf("%w: --signer-keystore needs --keystore (where to copy the keys)", errUsage)
	}
	if *keystoreDir != "" {
		if *signerKeys != "" {
			if err := agent.CopyKeystore(*signerKeys, *keystoreDir); err != nil {
				return err
			}
		}
		relay, err := agent.RelayAccount(*keystoreDir)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "relay account %s in %s\n", relay.Hex(), *keystoreDir)
	}
	log, err := newLogger(e.stderr, *logFormat, "info")
	if err != nil {
		return err
	}
	rc, err := cf.client(e)
	if err != nil {
		return err
	}
	res, err := agent.Init(ctx, agent.InitConfig{Registrar: rc, KeyPath: *key, Role: *role, StateDir: *state, ConfigPath: *out, ListenAddr: *listen, NATIP: *nat, Deadline: *deadline, Logger: log})
	if err != nil {
		return err
	}
	if res.Source == "saved" {
		fmt.Fprintln(e.stderr, "registrar unreachable: wrote the LAST SAVED peer set")
	}
	log.Info("cold-start config written", "config", *out, "node", res.NodeID, "static", len(res.Static), "bootnodes", len(res.Bootnodes), "source", res.Source)
	lines, quoted := gethFlagLines(res.Flags)
	fmt.Fprintln(e.stdout, strings.Join(quoted, " "))
	return os.WriteFile(filepath.Join(filepath.Dir(*out), "geth.flags"), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
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

func runAgentRun(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "agent run")
	rf := agentcli.AddRunFlags(fs, e.getenv)
	consFlags := addConsensusFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	r, err := rf.Check(e.stderr, e.getenv)
	if err != nil {
		return err
	}
	cons, err := consFlags.check(r.Config.AdvertiseIP)
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
