package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/dashboard"
	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store/migrate"
	"github.com/consortium/consortium/internal/store/open"
	"github.com/urfave/cli/v3"
)

// AdminCredentialFile is where a new registrar writes the administrator
// credential, inside its data directory, mode 0600.
const AdminCredentialFile = "admin.credential"

type registrarFlags struct {
	listen, data, tlsCert, tlsKey, seed, logFormat, logLevel string
	storeURL                                                 string
	etcd                                                     open.Options
	ttl, retention                                           time.Duration
	legacyOpen                                               bool
	allowLoopback                                            bool
	rateLimit                                                float64
	maxWait                                                  time.Duration
	maxConns, maxConnsPerIP, maxConnsPerMember, maxWatches   int
	dns                                                      dnsFlags
	pprofListen                                              string
	memoryLimit                                              string
	chainURLs                                                []string // --chain-rpc, parsed; nil: off
}

// etcdFlags are the etcd client options, named as etcdctl names them.
func etcdFlags(e *env) []cli.Flag {
	return []cli.Flag{
		cliflags.String("etcd-prefix", "/consortium/", "key prefix in etcd (one consortium per prefix)"),
		cliflags.String("etcd-cacert", "", "CA bundle (PEM) to verify etcd's certificates (etcds:// URLs)", e.source("CONSORTIUM_ETCD_CACERT")),
		cliflags.String("etcd-cert", "", "client certificate (PEM) for etcd", e.source("CONSORTIUM_ETCD_CERT")),
		cliflags.String("etcd-key", "", "client key (PEM) for etcd", e.source("CONSORTIUM_ETCD_KEY")),
		cliflags.String("etcd-user", "", "etcd user name (its password from CONSORTIUM_ETCD_PASSWORD)", e.source("CONSORTIUM_ETCD_USER")),
		cliflags.Duration("etcd-dial-timeout", 5*time.Second, "how long to wait for etcd at start-up"),
	}
}

// readEtcd reads etcdFlags' values, and the password from
// CONSORTIUM_ETCD_PASSWORD (a secret has no flag: it would show in ps).
func readEtcd(e *env, cmd *cli.Command) open.Options {
	return open.Options{Prefix: cmd.String("etcd-prefix"), CAFile: cmd.String("etcd-cacert"), CertFile: cmd.String("etcd-cert"), KeyFile: cmd.String("etcd-key"),
		Username: cmd.String("etcd-user"), DialTimeout: cmd.Duration("etcd-dial-timeout"), Password: e.getenv("CONSORTIUM_ETCD_PASSWORD")}
}

func registrarCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "registrar",
		Usage: "run the registrar (the consortium's node directory)",
		Flags: flags([]cli.Flag{
			cliflags.String("listen", ":9898", "address to serve on", e.source("CONSORTIUM_LISTEN")),
			cliflags.String("data", "data", "data directory (SQLite file, admin credential)", e.source("CONSORTIUM_DATA")),
			cliflags.String("store", "", "where the state lives: sqlite:///dir (default: the --data directory) or etcd://host:2379,host:2379 for several replicas", e.source("CONSORTIUM_STORE")),
		}, etcdFlags(e), []cli.Flag{
			cliflags.String("tls-cert", "", "TLS certificate (PEM); with --tls-key serves https", e.source("CONSORTIUM_TLS_CERT")),
			cliflags.String("tls-key", "", "TLS private key (PEM)", e.source("CONSORTIUM_TLS_KEY")),
			cliflags.String("seed", "", "seed.json from 'consortium init', applied only to an empty data directory"),
			cliflags.Duration("ttl", 30*time.Second, "lease of a node record"),
			cliflags.Duration("retention", 24*time.Hour, "how long a node record whose lease ran out stays listed (and counts in the dashboard's health) before it is deleted; 0 keeps it forever"),
			cliflags.Bool("legacy-open-post", false, "INSECURE: accept the seed's unauthenticated POST / and serve what it posts"),
			cliflags.Bool("allow-loopback-endpoints", false, "TEST NETWORKS ONLY: accept loopback addresses (127.0.0.0/8, ::1) as public endpoints, for a consortium on one host"),
			cliflags.Float("rate-limit", 2000, "requests per second allowed per credential"),
			cliflags.Duration("max-wait", 5*time.Minute, "longest blocking query"),
			cliflags.Int("max-conns", httpapi.DefaultMaxConns, "most open connections; past it idle anonymous connections are closed to make room, then new ones refused"),
			cliflags.Int("max-conns-per-ip", httpapi.DefaultMaxConnsPerIP, "most open connections from one client address that have not authenticated"),
			cliflags.Int("max-conns-per-member", httpapi.DefaultMaxConnsPerMember, "most open connections authenticated with one credential; past it the oldest idle one is closed"),
			cliflags.Int("max-watches", httpapi.DefaultMaxWatches, "most blocking queries one credential may hold open at once"),
		}, dnsFlagList(e), []cli.Flag{
			cliflags.String("pprof-listen", "", "serve Go's profiler (net/http/pprof) on this address, e.g. 127.0.0.1:6060; off by default: it exposes the process's memory, so keep it on loopback"),
			cliflags.String("memory-limit", "auto", "soft memory limit of the Go runtime: a size in MiB, off, or auto (56 MiB + 48 KiB per --max-conns); the collector works harder near it, nothing fails; GOMEMLIMIT overrides it"),
		}, logFlags(), []cli.Flag{
			cliflags.String("chain-rpc", "", "BFT consortium: CometBFT RPC endpoints (host:port or http(s) URLs, comma-separated) whose governance state decides the members; a majority must agree. Off: the administrator adds and revokes members (Clique)", e.source("CONSORTIUM_CHAIN_RPC")),
		}),
		Action:   func(ctx context.Context, cmd *cli.Command) error { return runRegistrar(ctx, e, cmd) },
		Commands: []*cli.Command{migrateCommand(e)},
	}
}

// readRegistrarFlags reads the registrar's flags.
func readRegistrarFlags(e *env, cmd *cli.Command) registrarFlags {
	return registrarFlags{
		listen: cmd.String("listen"), data: cmd.String("data"), storeURL: cmd.String("store"), etcd: readEtcd(e, cmd),
		tlsCert: cmd.String("tls-cert"), tlsKey: cmd.String("tls-key"), seed: cmd.String("seed"),
		ttl: cmd.Duration("ttl"), retention: cmd.Duration("retention"),
		legacyOpen: cmd.Bool("legacy-open-post"), allowLoopback: cmd.Bool("allow-loopback-endpoints"),
		rateLimit: cmd.Float("rate-limit"), maxWait: cmd.Duration("max-wait"),
		maxConns: cmd.Int("max-conns"), maxConnsPerIP: cmd.Int("max-conns-per-ip"), maxConnsPerMember: cmd.Int("max-conns-per-member"), maxWatches: cmd.Int("max-watches"),
		dns: readDNSFlags(cmd), pprofListen: cmd.String("pprof-listen"), memoryLimit: cmd.String("memory-limit"),
		logFormat: cmd.String("log-format"), logLevel: cmd.String("log-level"),
	}
}

func runRegistrar(ctx context.Context, e *env, cmd *cli.Command) error {
	f := readRegistrarFlags(e, cmd)
	chainURLs, err := parseChainRPC(cmd.String("chain-rpc"))
	if err != nil {
		return err
	}
	f.chainURLs = chainURLs
	if err := noArgs(cmd); err != nil {
		return err
	}
	if _, err := parseDNSAllow(f.dns.allow); err != nil {
		return err
	}
	if f.retention < 0 {
		return fmt.Errorf("%w: --retention must be 0 (keep lapsed records forever) or a positive duration", errUsage)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
	}
	log, err := newLogger(e.stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	limit, err := memoryLimit(f.memoryLimit, f.maxConns)
	if err != nil {
		return err
	}
	if e.getenv("GOMEMLIMIT") == "" {
		// A soft limit keeps the heap (and RSS) near the live set instead
		// of doubling it between collections; GOMEMLIMIT overrides it.
		debug.SetMemoryLimit(limit)
	}
	if f.pprofListen != "" {
		stop, err := servePprof(log, f.pprofListen)
		if err != nil {
			return err
		}
		defer stop()
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %v (is another registrar running? pick another --listen)", f.listen, err)
	}
	return serveRegistrar(ctx, log, ln, f)
}

func serveRegistrar(ctx context.Context, log *slog.Logger, ln net.Listener, f registrarFlags) error {
	defer ln.Close()
	if f.storeURL == "" {
		f.storeURL = "sqlite://" + f.data
	}
	if err := privateDir(log, f.data); err != nil {
		return err
	}
	f.etcd.Logger = log
	st, target, err := open.Open(ctx, f.storeURL, f.etcd)
	if err != nil {
		return fmt.Errorf("opening the store %s: %w", f.storeURL, err)
	}
	defer st.Close()
	retention := f.retention
	if retention == 0 {
		retention = -1 // registry.Config: negative keeps lapsed records forever
	}
	reg, err := registry.Open(ctx, st, registry.Config{TTL: f.ttl, Retention: retention, Logger: log, AllowLoopbackEndpoints: f.allowLoopback})
	if err != nil {
		return fmt.Errorf("loading the registry: %w", err)
	}
	if f.seed != "" {
		if err := reg.ApplySeedFile(ctx, f.seed); errors.Is(err, registry.ErrAlreadyInitialised) {
			log.Info("seed ignored: the store is already initialised (by an earlier start or another replica)", "seed", f.seed)
		} else if err != nil {
			return fmt.Errorf("applying --seed: %w", err)
		} else {
			log.Info("seed applied", "seed", f.seed)
		}
	}
	cred, created, err := reg.EnsureAdmin(ctx)
	if err != nil {
		return fmt.Errorf("creating the administrator credential: %w", err)
	}
	if created {
		path := filepath.Join(f.data, AdminCredentialFile)
		if err := os.WriteFile(path, []byte(cred.String()+"\n"), 0o600); err != nil {
			return fmt.Errorf("writing the administrator credential: %w", err)
		}
		log.Info("created the administrator credential", "file", path)
	}
	if f.chainURLs != nil {
		reg.GovernByChain()
	}
	if f.tlsCert == "" && !loopbackAddr(ln.Addr()) {
		log.Warn("serving plain http beyond loopback: member credentials would travel in clear text; pass --tls-cert and --tls-key, or put a TLS proxy in front")
	}
	if f.allowLoopback {
		log.Warn("loopback public endpoints are accepted (--allow-loopback-endpoints): for a test network on one host only")
	}
	if f.legacyOpen {
		log.Warn("INSECURE: the seed's open POST / is enabled (--legacy-open-post): anyone who reaches this port can post enodes")
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	trees, err := startDNS(runCtx, log, reg, f.data, f.dns)
	if err != nil {
		return err
	}
	follower := newFollower(log, reg, f.chainURLs)
	dcfg := dashboard.Config{Registry: reg, Logger: log}
	if follower != nil {
		// The consensus panel lists the chain's open proposals.
		dcfg.Governance = follower.Governance
	}
	dash := dashboard.New(dcfg)
	maxConns := fitConns(log, f.maxConns)
	srv := httpapi.New(httpapi.Config{Registry: reg, Logger: log, LegacyOpen: f.legacyOpen, RateLimit: f.rateLimit, MaxWait: f.maxWait,
		MaxConns: maxConns, MaxConnsPerIP: f.maxConnsPerIP, MaxConnsPerMember: f.maxConnsPerMember, MaxWatches: f.maxWatches,
		Trees: trees, Extra: map[string]http.Handler{"/ui/": dash}})
	hs := &http.Server{
		Handler:        srv,
		ReadTimeout:    30 * time.Second,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Connection limits, header and idle timeouts (httpapi's defaults).
	ln = srv.Prepare(hs, ln)
	// Shutdown would otherwise wait for the dashboard's open streams.
	hs.RegisterOnShutdown(dash.Close)
	done := make(chan struct{})
	go func() { defer close(done); runRegistry(runCtx, log, reg, follower) }()
	dashDone := make(chan struct{})
	go func() { defer close(dashDone); dash.Run(runCtx) }()

	errc := make(chan error, 1)
	scheme := "http"
	if f.tlsCert != "" {
		scheme = "https"
		certs, err := reloadingCert(runCtx, log, f.tlsCert, f.tlsKey)
		if err != nil {
			cancel()
			<-done
			<-dashDone
			return err
		}
		hs.TLSConfig = certs.TLSConfig()
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	log.Info("registrar serving", "url", scheme+"://"+ln.Addr().String(), "store", target.String(), "data", f.data, "ttl", f.ttl, "retention", f.retention)
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			cancel()
			<-done
			<-dashDone
			return fmt.Errorf("serving: %w", err)
		}
	}
	log.Info("registrar stopping")
	sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer scancel()
	hs.Shutdown(sctx)
	cancel()
	<-done
	<-dashDone
	return nil
}

// privateDir makes dir, or makes an existing dir, mode 0700: it holds the
// database (every member's private endpoints) and the administrator
// credential, so nobody else may list, read or replace its files, whatever
// mode it had before (a directory made by hand, a volume mounted 0777).
func privateDir(log *slog.Logger, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("data directory %s has mode %04o and cannot be made 0700 (%v): it holds the database and the administrator credential; make it 0700 and owned by the registrar's user", dir, perm, err)
		}
		log.Warn("the data directory was open to other users; made it 0700", "dir", dir, "was", fmt.Sprintf("%04o", perm))
	}
	return nil
}

// fitConns lowers the connection cap to what the process's file descriptor
// limit allows (Go raises the soft limit to the hard one at start-up), with
// room for the store and the accept loop's own: past the limit accept
// fails with "too many open files" and nobody gets in.
func fitConns(log *slog.Logger, want int) int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return want
	}
	if room := int(min(rl.Cur, 1<<30)) - 256; room < want {
		room = max(room, 64)
		log.Warn("the file descriptor limit is lower than --max-conns: capping connections below it; raise the limit (ulimit -n, LimitNOFILE=)", "max_conns", want, "fd_limit", rl.Cur, "capped_to", room)
		return room
	}
	return want
}

func loopbackAddr(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}

// migrateCommand copies a registrar's state between stores:
//
//	consortium registrar migrate --from sqlite:///var/lib/consortium --to etcd://e1:2379,e2:2379,e3:2379
//
// Stop the registrar that uses --from first: renewals it takes during the
// copy would be lost (its agents register again; nothing else is).
func migrateCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "copy a registrar's state to an empty store (stop the registrar that uses --from first)",
		Flags: flags([]cli.Flag{
			cliflags.String("from", "", "source store URL (sqlite:///dir or etcd://...)"),
			cliflags.String("to", "", "destination store URL; must be empty"),
		}, etcdFlags(e)),
		Action: func(ctx context.Context, cmd *cli.Command) error { return runMigrate(ctx, e, cmd) },
	}
}

func runMigrate(ctx context.Context, e *env, cmd *cli.Command) error {
	from, to, o := cmd.String("from"), cmd.String("to"), readEtcd(e, cmd)
	if from == "" || to == "" {
		return fmt.Errorf("%w: consortium registrar migrate --from URL --to URL", errUsage)
	}
	if err := noArgs(cmd); err != nil {
		return err
	}
	src, st, err := open.Open(ctx, from, o)
	if err != nil {
		return fmt.Errorf("opening --from: %w", err)
	}
	defer src.Close()
	dst, dt, err := open.Open(ctx, to, o)
	if err != nil {
		return fmt.Errorf("opening --to: %w", err)
	}
	defer dst.Close()
	if st.String() == dt.String() {
		return fmt.Errorf("%w: --from and --to are the same store", errUsage)
	}
	rep, err := migrate.Copy(ctx, src, dst)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s\nfrom %s to %s; the copy was read back and matches.\n", rep, st, dt)
	return nil
}
