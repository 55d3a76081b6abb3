// Command agentonly is the agent alone, for Clique consortia: the same
// loop and the same flags as `consortium agent run` for a node without a
// consensus process (no --consensus-home, no --firewall), linked without
// the registrar, CometBFT, etcd and SQLite. It exists to measure what the
// agent costs by itself (BenchmarkAgentRSS, docs/benchmarks.md): the full
// binary's resident pages and package initialisation are most of an
// agent's RSS. The images run `consortium agent run`.
//
//	go build -o consortium-agent ./internal/agent/agentonly
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "agentonly:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("agentonly", flag.ContinueOnError)
	regURL := fs.String("registrar", envOr("CONSORTIUM_REGISTRAR", "http://127.0.0.1:9898"), "registrar URL(s), comma-separated")
	credFile := fs.String("credential-file", envOr("CONSORTIUM_CREDENTIAL_FILE", "credential"), "file holding the member credential (CONSORTIUM_CREDENTIAL wins)")
	rpcEP := fs.String("rpc", "", "the client's IPC socket path or http(s)/ws URL (admin API)")
	role := fs.String("role", "", "bootnode, validator, tx or public")
	key := fs.String("nodekey", "nodekey", "the client's node key file")
	state := fs.String("state-dir", "agent-state", "where the last peer set is kept")
	cfgOut := fs.String("config-out", "", "geth config.toml to keep rewriting (cold start)")
	p2pListen := fs.String("p2p-listen", "", "geth [Node.P2P] ListenAddr written into --config-out")
	advertise := fs.String("advertise-ip", "", "IP registered for the private endpoint (default: the client's)")
	publicIP := fs.String("public-ip", "", "public endpoint IP (role public)")
	publicPort := fs.Int("public-port", 0, "public endpoint port (default: the client's P2P port)")
	httpAddr := fs.String("listen", "127.0.0.1:9899", "address for /healthz and /metrics (empty: off)")
	keystoreDir := fs.String("keystore", "", "geth's keystore holding the relay account (Clique, geth 1.13)")
	seal := fs.String("seal", "", "Clique signer address of a validator whose geth runs without --mine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *role == "" || *rpcEP == "" {
		return errors.New("--role and --rpc are required")
	}
	cred := os.Getenv("CONSORTIUM_CREDENTIAL")
	if cred == "" {
		b, err := os.ReadFile(*credFile)
		if err != nil {
			return err
		}
		cred = strings.TrimSpace(string(b))
	}
	rc, err := registrarclient.New(registrarclient.Config{URL: *regURL, Credential: cred})
	if err != nil {
		return err
	}
	k, _, err := agent.LoadOrCreateKey(*key)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg := agent.Config{Registrar: rc, Key: k, Role: *role, StateDir: *state, ConfigPath: *cfgOut, ListenAddr: *p2pListen, PublicPort: *publicPort, Logger: log}
	if *seal != "" {
		if !common.IsHexAddress(*seal) {
			return fmt.Errorf("--seal %q is not an address", *seal)
		}
		cfg.Seal = common.HexToAddress(*seal)
	}
	if *keystoreDir != "" {
		if cfg.Relay, err = agent.RelayAccount(*keystoreDir); err != nil {
			return err
		}
	}
	for _, ip := range []struct {
		flag, s string
		to      *net.IP
	}{{"--advertise-ip", *advertise, &cfg.AdvertiseIP}, {"--public-ip", *publicIP, &cfg.PublicIP}} {
		if ip.s != "" {
			if *ip.to = net.ParseIP(ip.s); *ip.to == nil {
				return fmt.Errorf("%s %q is not an IP", ip.flag, ip.s)
			}
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for wait := 250 * time.Millisecond; ; wait = min(wait*2, 5*time.Second) {
		c, err := ethclient.Dial(ctx, ethclient.Config{Endpoint: *rpcEP})
		if err == nil {
			defer c.Close()
			cfg.Client = c
			break
		}
		log.Info("waiting for the client", "rpc", *rpcEP, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg.Metrics = reg
	a, err := agent.New(cfg)
	if err != nil {
		return err
	}
	if *httpAddr != "" {
		ln, err := net.Listen("tcp", *httpAddr)
		if err != nil {
			return err
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
	}
	return a.Run(ctx)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
