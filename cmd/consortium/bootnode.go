package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/bootnode"
	"github.com/consortium/consortium/internal/cliflags"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v3"
)

func bootnodeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "bootnode",
		Usage: "run a discv4+discv5 discovery bootnode that registers itself",
		Flags: flags(clientFlags(e, "credential", "member"), []cli.Flag{
			cliflags.String("listen", bootnode.DefaultListenAddr, "UDP address for discv4 and discv5"),
			cliflags.String("data", "bootnode", "data directory (nodekey, node database)"),
			cliflags.String("nodekey", "", "node key file (default DATA/nodekey; created 0600 if missing)"),
			cliflags.String("netrestrict", "", "only talk to these CIDRs, e.g. 10.0.0.0/8"),
			cliflags.String("external-ip", "", "IP advertised in the record (default: the --listen IP)"),
			cliflags.Bool("register", true, "register with the registrar (role bootnode) and keep the lease"),
			cliflags.Bool("liveness-check", false, "hand out only re-pinged nodes (go-ethereum's default; slower discovery)"),
			cliflags.String("http", "127.0.0.1:9900", "address for /healthz and /metrics (empty: off)"),
		}, logFlags()),
		Action: func(ctx context.Context, cmd *cli.Command) error { return runBootnode(ctx, e, cmd) },
	}
}

func runBootnode(ctx context.Context, e *env, cmd *cli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	extIP, httpAddr := cmd.String("external-ip"), cmd.String("http")
	log, err := newLogger(e.stderr, cmd.String("log-format"), cmd.String("log-level"))
	if err != nil {
		return err
	}
	cfg := bootnode.Config{ListenAddr: cmd.String("listen"), DataDir: cmd.String("data"), KeyFile: cmd.String("nodekey"), NetRestrict: cmd.String("netrestrict"), NoLivenessCheck: !cmd.Bool("liveness-check"), Logger: log}
	if extIP != "" {
		if cfg.ExternalIP = net.ParseIP(extIP); cfg.ExternalIP == nil {
			return fmt.Errorf("%w: --external-ip %q is not an IP", errUsage, extIP)
		}
	}
	b, err := bootnode.New(cfg)
	if err != nil {
		return err
	}
	if err := b.Start(ctx); err != nil {
		return err
	}
	defer b.Close()
	log.Info("bootnode running", "enode", b.Enode(), "enr", b.ENR())
	fmt.Fprintln(e.stdout, b.Enode())

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "consortium_bootnode_up", Help: "1 while the bootnode serves discovery."})
	reg.MustRegister(up)
	up.Set(1)
	if httpAddr != "" {
		ln, err := net.Listen("tcp", httpAddr)
		if err != nil {
			return fmt.Errorf("cannot listen on %s for health and metrics: %v (pick another --http)", httpAddr, err)
		}
		mux := http.NewServeMux()
		mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, "{\"status\":\"ok\",\"enode\":%q}\n", b.Enode())
		})
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go hs.Serve(ln)
		defer hs.Close()
	}
	if cmd.Bool("register") {
		rc, err := registrarClient(e, cmd)
		if err != nil {
			return err
		}
		go agent.Announce(ctx, rc, "bootnode", b.ENR, log)
	}
	<-ctx.Done()
	log.Info("bootnode stopping")
	return nil
}
