// Package agentcli is the command line of a node's agent, written once for
// the two mains that run it: `consortium agent run` (cmd/consortium, which
// adds the consensus process of BFT nodes) and the agent-only build
// (internal/agent/agentonly, for Clique nodes). It defines the flags,
// checks them into an agent.Config, and serves the agent: it dials the
// client, serves /healthz and /metrics, and runs the loop until the
// context ends.
package agentcli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v3"
)

// RunFlags are the values of `agent run`'s flags (Flags): the registrar
// client's, the node's, the logger's and the firewall's.
type RunFlags struct {
	Client                                   cliflags.Client
	rpc, role, key, state, cfgOut, p2pListen string
	advertise, publicIP, listen              string
	logFormat, logLevel, keystore, seal      string
	firewall, fwTable, fwAllow               string
	publicPort                               int
}

// Flags are the flags of `agent run`; getenv reads the registrar client
// flags' environment variables (CONSORTIUM_REGISTRAR, ...).
func Flags(getenv cliflags.Getenv) []cli.Flag {
	return append(cliflags.ClientFlags(getenv, "credential", "member"),
		cliflags.String("rpc", "", "the client's IPC socket path or http(s)/ws URL (admin API)", getenv.Source("CONSORTIUM_RPC")),
		cliflags.String("role", "", "bootnode, validator, tx or public"),
		cliflags.String("nodekey", "nodekey", "the client's node key file (read again when the client comes back with another key: a node-key rotation)"),
		cliflags.String("state-dir", "agent-state", "where the last peer set is kept"),
		cliflags.String("config-out", "", "geth config.toml to keep rewriting (cold start)"),
		cliflags.String("p2p-listen", "", "geth [Node.P2P] ListenAddr written into --config-out"),
		cliflags.String("advertise-ip", "", "IP registered for the private endpoint (default: the client's)"),
		cliflags.String("public-ip", "", "public endpoint IP (role public)"),
		cliflags.Int("public-port", 0, "public endpoint port (default: the client's P2P port)"),
		cliflags.String("listen", "127.0.0.1:9899", "address for /healthz and /metrics (empty: off)"),
		cliflags.String("log-format", "text", "text or json"),
		cliflags.String("log-level", "info", "debug, info, warn or error"),
		cliflags.String("keystore", "", "geth's keystore holding the relay account of agent init --keystore: the agent marks geth 1.13 synced at each start (Clique chains)"),
		cliflags.String("seal", "", "Clique signer address of a validator whose geth runs WITHOUT --mine: the agent starts sealing once the node is peered and at the head"),
		cliflags.String("firewall", "", "nftables: keep an nftables table that lets only the node's peers reach its P2P TCP port (needs nft and CAP_NET_ADMIN; default off)"),
		cliflags.String("firewall-table", agent.DefaultNFTTable, "the nftables table (inet family) the agent owns and rewrites"),
		cliflags.String("firewall-allow", "", "further comma-separated addresses or CIDRs allowed to reach the P2P port"),
	)
}

// ReadFlags reads the values of Flags from the command that parsed them.
func ReadFlags(cmd *cli.Command) *RunFlags {
	return &RunFlags{
		Client: cliflags.ReadClient(cmd),
		rpc:    cmd.String("rpc"), role: cmd.String("role"), key: cmd.String("nodekey"), state: cmd.String("state-dir"),
		cfgOut: cmd.String("config-out"), p2pListen: cmd.String("p2p-listen"), advertise: cmd.String("advertise-ip"),
		publicIP: cmd.String("public-ip"), publicPort: cmd.Int("public-port"), listen: cmd.String("listen"),
		logFormat: cmd.String("log-format"), logLevel: cmd.String("log-level"), keystore: cmd.String("keystore"),
		seal: cmd.String("seal"), firewall: cmd.String("firewall"), fwTable: cmd.String("firewall-table"), fwAllow: cmd.String("firewall-allow"),
	}
}

// Run is RunFlags checked: what Serve needs.
type Run struct {
	// Config is the agent's configuration, without Client and Metrics
	// (Serve sets them).
	Config agent.Config
	// RPC is the client's endpoint (--rpc); Listen the address of
	// /healthz and /metrics (--listen, empty: off).
	RPC, Listen string
	Log         *slog.Logger
}

// Check validates the flags and builds the agent's configuration: it
// reads the credential and the node key (creating the key when missing)
// and, with --keystore, the relay account. Wrong flags give errors that
// wrap cliflags.ErrUsage, before any file is written. Logs go to stderr.
func (f *RunFlags) Check(stderr io.Writer, getenv cliflags.Getenv) (*Run, error) {
	if f.role == "" || f.rpc == "" {
		return nil, fmt.Errorf("%w: --role and --rpc are required", cliflags.ErrUsage)
	}
	var advertise, public net.IP
	if f.advertise != "" {
		if advertise = net.ParseIP(f.advertise); advertise == nil {
			return nil, fmt.Errorf("%w: --advertise-ip %q is not an IP", cliflags.ErrUsage, f.advertise)
		}
	}
	if f.publicIP != "" {
		if public = net.ParseIP(f.publicIP); public == nil {
			return nil, fmt.Errorf("%w: --public-ip %q is not an IP", cliflags.ErrUsage, f.publicIP)
		}
	}
	var sealAs, relay common.Address
	if f.seal != "" {
		if !common.IsHexAddress(f.seal) {
			return nil, fmt.Errorf("%w: --seal %q is not an address (0x and 40 hex digits)", cliflags.ErrUsage, f.seal)
		}
		sealAs = common.HexToAddress(f.seal)
	}
	fw, err := Firewall(f.firewall, f.fwTable, f.fwAllow)
	if err != nil {
		return nil, err
	}
	log, err := cliflags.NewLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return nil, err
	}
	if f.keystore != "" {
		if relay, err = agent.RelayAccount(f.keystore); err != nil {
			return nil, err
		}
	}
	rc, err := f.Client.Client(getenv, log)
	if err != nil {
		return nil, err
	}
	k, _, err := agent.LoadOrCreateKey(f.key)
	if err != nil {
		return nil, err
	}
	cfg := agent.Config{Registrar: rc, Key: k, Role: f.role, StateDir: f.state, ConfigPath: f.cfgOut, ListenAddr: f.p2pListen, PublicPort: f.publicPort, Seal: sealAs, Relay: relay, Logger: log}
	// Read again when the client comes back with another key: the agent
	// takes the new key on in place (a node-key rotation).
	cfg.KeyFile = f.key
	cfg.Firewall, cfg.FirewallTable, cfg.FirewallAllow = fw.Firewall, f.fwTable, fw.Allow
	cfg.AdvertiseIP, cfg.PublicIP = advertise, public
	return &Run{Config: cfg, RPC: f.rpc, Listen: f.listen, Log: log}, nil
}

// FirewallConfig is --firewall, --firewall-table and --firewall-allow
// checked.
type FirewallConfig struct {
	Firewall agent.Firewall // nil: off
	Allow    []netip.Prefix
}

// Firewall checks --firewall (kind), --firewall-table and --firewall-allow.
func Firewall(kind, table, allow string) (FirewallConfig, error) {
	var fc FirewallConfig
	switch kind {
	case "":
		if allow != "" {
			return fc, fmt.Errorf("%w: --firewall-allow needs --firewall nftables", cliflags.ErrUsage)
		}
		return fc, nil
	case "nftables", "nft":
		fc.Firewall = agent.NFT{}
	default:
		return fc, fmt.Errorf("%w: --firewall %q: the only kind is nftables", cliflags.ErrUsage, kind)
	}
	if _, err := (agent.NFTRules{Table: table, Port: 1}).Render(); err != nil {
		return fc, fmt.Errorf("%w: --firewall-table: %v", cliflags.ErrUsage, err)
	}
	for _, s := range strings.Split(allow, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return fc, fmt.Errorf("%w: --firewall-allow %q is neither an address nor a CIDR", cliflags.ErrUsage, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		fc.Allow = append(fc.Allow, p)
	}
	return fc, nil
}

// Hook starts what runs beside the agent (the consensus process of a BFT
// node) once the client is dialled and cfg.Metrics is set; it may change
// cfg. fail ends Serve with that error as the cause. Serve calls stop
// after the agent has returned.
type Hook func(ctx context.Context, cfg *agent.Config, fail func(error)) (stop func(), err error)

// Serve dials the client (retrying: it may start after the agent), serves
// health and metrics, runs hook when not nil, and runs the agent until ctx
// ends (nil) or hook's process fails (its error).
func Serve(ctx context.Context, r *Run, hook Hook) error {
	log := r.Log
	var client *ethclient.Geth
	backoff := 250 * time.Millisecond
	for {
		var err error
		client, err = ethclient.Dial(ctx, ethclient.Config{Endpoint: r.RPC})
		if err == nil {
			break
		}
		log.Info("waiting for the client", "rpc", r.RPC, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	defer client.Close()
	cfg := r.Config
	cfg.Client = client
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Metrics = reg
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if hook != nil {
		stop, err := hook(ctx, &cfg, func(err error) { cancel(err) })
		if err != nil {
			return err
		}
		// The hook's process may return only once ctx ends: cancel first.
		defer func() { cancel(nil); stop() }()
	}
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	if r.Listen != "" {
		ln, err := net.Listen("tcp", r.Listen)
		if err != nil {
			return fmt.Errorf("cannot listen on %s for health and metrics: %v (pick another --listen)", r.Listen, err)
		}
		hs := &http.Server{Handler: handler(a, reg), ReadHeaderTimeout: 5 * time.Second}
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

// handler serves GET /healthz (the agent's Health, 503 while the client
// is unreachable) and GET /metrics.
func handler(a interface{ Health() agent.Health }, g prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		h := a.Health()
		w.Header().Set("Content-Type", "application/json")
		if !h.ClientReachable {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		json.NewEncoder(w).Encode(h)
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	return mux
}
