package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	cf := addClientFlags(e, fs, "credential", "member")
	rpcEP := fs.String("rpc", "", "the client's IPC socket path or http(s)/ws URL (admin API)")
	role := fs.String("role", "", "bootnode, validator, tx or public")
	key := fs.String("nodekey", "nodekey", "the client's node key file")
	state := fs.String("state-dir", "agent-state", "where the last peer set is kept")
	cfgOut := fs.String("config-out", "", "geth config.toml to keep rewriting (cold start)")
	listen := fs.String("p2p-listen", "", "geth [Node.P2P] ListenAddr written into --config-out")
	advertise := fs.String("advertise-ip", "", "IP registered for the private endpoint (default: the client's)")
	publicIP := fs.String("public-ip", "", "public endpoint IP (role public)")
	publicPort := fs.Int("public-port", 0, "public endpoint port (default: the client's P2P port)")
	httpAddr := fs.String("listen", "127.0.0.1:9899", "address for /healthz and /metrics (empty: off)")
	logFormat := fs.String("log-format", "text", "text or json")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	keystoreDir := fs.String("keystore", "", "geth's keystore holding the relay account of agent init --keystore: the agent marks geth 1.13 synced at each start (Clique chains)")
	seal := fs.String("seal", "", "Clique signer address of a validator whose geth runs WITHOUT --mine: the agent starts sealing once the node is peered and at the head")
	firewall := fs.String("firewall", "", "nftables: keep an nftables table that lets only the node's peers reach its P2P TCP port (needs nft and CAP_NET_ADMIN; default off)")
	fwTable := fs.String("firewall-table", agent.DefaultNFTTable, "the nftables table (inet family) the agent owns and rewrites")
	fwAllow := fs.String("firewall-allow", "", "further comma-separated addresses or CIDRs allowed to reach the P2P port")
	consFlags := addConsensusFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if *role == "" || *rpcEP == "" {
		return fmt.Errorf("%w: --role and --rpc are required", errUsage)
	}
	var sealAs, relay common.Address
	if *seal != "" {
		if !common.IsHexAddress(*seal) {
			return fmt.Errorf("%w: --seal %q is not an address (0x and 40 hex digits)", errUsage, *seal)
		}
		sealAs = common.HexToAddress(*seal)
	}
	if *keystoreDir != "" {
		var err error
		if relay, err = agent.RelayAccount(*keystoreDir); err != nil {
			return err
		}
	}
	fw, err := firewallFlags(*firewall, *fwTable, *fwAllow)
	if err != nil {
		return err
	}
	log, err := newLogger(e.stderr, *logFormat, *logLevel)
	if err != nil {
		return err
	}
	rc, err := cf.client(e)
	if err != nil {
		return err
	}
	k, _, err := agent.LoadOrCreateKey(*key)
	if err != nil {
		return err
	}
	cfg := agent.Config{Registrar: rc, Key: k, Role: *role, StateDir: *state, ConfigPath: *cfgOut, ListenAddr: *listen, PublicPort: *publicPort, Seal: sealAs, Relay: relay, Logger: log}
	cfg.Firewall, cfg.FirewallTable, cfg.FirewallAllow = fw.fw, *fwTable, fw.allow
	if *advertise != "" {
		if cfg.AdvertiseIP = net.ParseIP(*advertise); cfg.AdvertiseIP == nil {
			return fmt.Errorf("%w: --advertise-ip %q is not an IP", errUsage, *advertise)
		}
	}
	if *publicIP != "" {
		if cfg.PublicIP = net.ParseIP(*publicIP); cfg.PublicIP == nil {
			return fmt.Errorf("%w: --public-ip %q is not an IP", errUsage, *publicIP)
		}
	}
	cons, err := consFlags.check(cfg.AdvertiseIP)
	if err != nil {
		return err
	}
	return runAgentWith(ctx, log, cfg, *rpcEP, *httpAddr, cons)
}

type firewallConfig struct {
	fw    agent.Firewall
	allow []netip.Prefix
}

// firewallFlags checks --firewall, --firewall-table and --firewall-allow.
func firewallFlags(kind, table, allow string) (firewallConfig, error) {
	var fc firewallConfig
	switch kind {
	case "":
		if allow != "" {
			return fc, fmt.Errorf("%w: --firewall-allow needs --firewall nftables", errUsage)
		}
		return fc, nil
	case "nftables", "nft":
		fc.fw = agent.NFT{}
	default:
		return fc, fmt.Errorf("%w: --firewall %q: the only kind is nftables", errUsage, kind)
	}
	if _, err := (agent.NFTRules{Table: table, Port: 1}).Render(); err != nil {
		return fc, fmt.Errorf("%w: --firewall-table: %v", errUsage, err)
	}
	for _, s := range strings.Split(allow, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return fc, fmt.Errorf("%w: --firewall-allow %q is neither an address nor a CIDR", errUsage, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		fc.allow = append(fc.allow, p)
	}
	return fc, nil
}

// runAgentWith dials the client (retrying: it may start after the agent),
// serves health and metrics, starts the consensus process when cons is
// set, and runs the agent until ctx ends (or the consensus process fails
// to start).
func runAgentWith(ctx context.Context, log *slog.Logger, cfg agent.Config, rpcEP, httpAddr string, cons *consensusOpts) error {
	var client *ethclient.Geth
	backoff := 250 * time.Millisecond
	for {
		var err error
		client, err = ethclient.Dial(ctx, ethclient.Config{Endpoint: rpcEP})
		if err == nil {
			break
		}
		log.Info("waiting for the client", "rpc", rpcEP, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	defer client.Close()
	cfg.Client = client
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Metrics = reg
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if cons != nil {
		rc, err := startConsensus(ctx, cons, log, reg, &cfg, func(err error) { cancel(err) })
		if err != nil {
			return err
		}
		// Start returns once ctx ends, so cancel before waiting for it.
		defer func() { cancel(nil); rc.stop(log) }()
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	if httpAddr != "" {
		ln, err := net.Listen("tcp", httpAddr)
		if err != nil {
			return fmt.Errorf("cannot listen on %s for health and metrics: %v (pick another --listen)", httpAddr, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			h := a.Health()
			w.Header().Set("Content-Type", "application/json")
			if !h.ClientReachable {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			json.NewEncoder(w).Encode(h)
		})
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
		log.Info("agent health and metrics", "url", "http://"+ln.Addr().String())
	}
	if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		return fmt.Errorf("consensus process: %w", cause)
	}
	return nil
}
