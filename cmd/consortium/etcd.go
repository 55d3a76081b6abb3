package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/etcdserver"
	"github.com/urfave/cli/v3"
)

// etcdCommand runs one etcd member inside the consortium binary, so a
// deployment that wants several registrar replicas needs no other image:
//
//	consortium etcd --name e1 --data /data \
//	  --listen-client http://0.0.0.0:2379 --advertise-client http://e1:2379 \
//	  --listen-peer http://0.0.0.0:2380 --advertise-peer http://e1:2380 \
//	  --initial-cluster e1=http://e1:2380,e2=http://e2:2380,e3=http://e3:2380
func etcdCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "etcd",
		Usage: "run one member of an etcd cluster for highly available registrars (etcd, embedded)",
		Flags: flags([]cli.Flag{
			cliflags.String("name", "", "this member's name (as in --initial-cluster)"),
			cliflags.String("data", "", "data directory"),
			cliflags.String("listen-client", "http://127.0.0.1:2379", "client URLs to listen on (comma-separated)"),
			cliflags.String("advertise-client", "", "client URLs to advertise (default: --listen-client)"),
			cliflags.String("listen-peer", "http://127.0.0.1:2380", "peer URLs to listen on (comma-separated)"),
			cliflags.String("advertise-peer", "", "peer URLs to advertise (default: --listen-peer)"),
			cliflags.String("initial-cluster", "", "name=peerURL,... of every member (default: this one alone)"),
			cliflags.String("initial-cluster-state", "new", "new, or existing when joining a running cluster"),
			cliflags.String("initial-cluster-token", "consortium", "token that keeps two clusters apart"),
		}, logFlags()),
		Action: func(ctx context.Context, cmd *cli.Command) error { return runEtcd(ctx, e, cmd) },
	}
}

func runEtcd(ctx context.Context, e *env, cmd *cli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	c := etcdserver.Config{Name: cmd.String("name"), DataDir: cmd.String("data"), InitialCluster: cmd.String("initial-cluster"),
		ClusterState: cmd.String("initial-cluster-state"), ClusterToken: cmd.String("initial-cluster-token")}
	lc, ac, lp, ap := cmd.String("listen-client"), cmd.String("advertise-client"), cmd.String("listen-peer"), cmd.String("advertise-peer")
	logFormat, logLevel := cmd.String("log-format"), cmd.String("log-level")
	if c.Name == "" || c.DataDir == "" {
		return fmt.Errorf("%w: --name and --data are required", errUsage)
	}
	if c.ClusterState != "new" && c.ClusterState != "existing" {
		return fmt.Errorf("%w: --initial-cluster-state must be new or existing", errUsage)
	}
	split := func(s string) []string {
		var out []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
		return out
	}
	c.ClientURLs, c.PeerURLs = split(lc), split(lp)
	c.AdvertiseClientURLs, c.AdvertisePeerURLs = split(ac), split(ap)
	if len(c.AdvertiseClientURLs) == 0 {
		c.AdvertiseClientURLs = c.ClientURLs
	}
	if len(c.AdvertisePeerURLs) == 0 {
		c.AdvertisePeerURLs = c.PeerURLs
	}
	if c.InitialCluster == "" {
		c.InitialCluster = c.Name + "=" + c.AdvertisePeerURLs[0]
	}
	log, err := newLogger(e.stderr, logFormat, logLevel)
	if err != nil {
		return err
	}
	c.Logger = log
	srv, err := etcdserver.Start(ctx, c)
	if err != nil {
		return fmt.Errorf("starting etcd: %w", err)
	}
	log.Info("etcd member serving", "name", c.Name, "clients", strings.Join(srv.ClientEndpoints(), ","))
	select {
	case <-ctx.Done():
	case err := <-srv.Err():
		srv.Close()
		return fmt.Errorf("etcd stopped: %w", err)
	}
	log.Info("etcd member stopping")
	srv.Close()
	return nil
}
