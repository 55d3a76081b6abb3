// Package etcd is the store that several registrar replicas share: the
// registry's durable copy kept in an etcd cluster, so that any replica can
// die and the others carry on with the same members, nodes and leases.
//
// Layout, under a prefix (default "/consortium/"):
//
//	admin                     the administrator's credential hash
//	members/<name>            JSON of a store.Member
//	nodes/<id>                JSON of a store.Node without Expires and Status
//	leases/<id>               the lease's end, Unix milliseconds in decimal
//	status/<id>               the agent's status report, opaque JSON
//	legacy/<network>/<enode>  JSON of a store.Legacy (path segments escaped)
//
// A node is split in three keys so that a renewal, the most frequent write by
// far, rewrites only the small leases/<id> key (and status/<id> when the agent
// reported one), not the signed records.
//
// Leases are absolute times, not etcd leases. An etcd lease is owned by the
// client that keeps it alive: it would expire when the replica that granted
// it dies, though another replica keeps receiving the node's renewals. An
// absolute end time is the equivalent of an etcd lease that survives a
// replica's death: every replica sees the same end through Load and Watch and
// reaps by time, as the single registrar does with SQLite.
//
// Every write returns once etcd acknowledged it, that is once a quorum of
// members has it in its log. Every failure of etcd (no answer within
// RequestTimeout, no leader, no quorum) is an error that wraps
// store.ErrUnavailable.
//
// The store also implements store.Watcher (every committed change, in order,
// from etcd's watch) and store.Initializer (a transaction that writes the
// administrator and the members only if no administrator exists).
//
// The etcd cluster must compact its history (etcd's --auto-compaction-*,
// which the embedded server of internal/etcdserver sets): renewals write a
// revision every flush, and uncompacted history grows until etcd's quota.
package etcd

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap/zapcore"

	"github.com/consortium/consortium/internal/etcdserver/zaplog"
	"github.com/consortium/consortium/internal/store"
)

// Config says how to reach the etcd cluster. Zero values mean the default
// given in each field's comment.
type Config struct {
	// Endpoints are the members' client URLs: "http://host:2379",
	// "https://host:2379" or "host:2379". Required.
	Endpoints []string
	// Prefix is prepended to every key, so that several consortia (or
	// tests) can share one cluster. A missing final "/" is added. Default
	// "/consortium/".
	Prefix string
	// Username and Password authenticate to etcd when its auth is on.
	Username, Password string
	// CAFile verifies the members' certificates; CertFile and KeyFile are a
	// client certificate. As etcdctl's --cacert, --cert and --key. Any of
	// them turns TLS on.
	CAFile, CertFile, KeyFile string
	// DialTimeout bounds Open's wait for a first answer. Default 5 s.
	DialTimeout time.Duration
	// RequestTimeout bounds every call, retries included. Default 3 s.
	RequestTimeout time.Duration
	// MaxTxnOps is the cluster's --max-txn-ops: renewals are written in
	// transactions of at most this many operations. Default 128, etcd's.
	MaxTxnOps int
	// Logger receives the store's warnings (and the etcd client's errors).
	// Default slog.Default().
	Logger *slog.Logger
}

const (
	defaultPrefix         = "/consortium/"
	defaultDialTimeout    = 5 * time.Second
	defaultRequestTimeout = 3 * time.Second
	defaultMaxTxnOps      = 128
)

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = defaultPrefix
	}
	if !strings.HasSuffix(c.Prefix, "/") {
		c.Prefix += "/"
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = defaultDialTimeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = defaultRequestTimeout
	}
	if c.MaxTxnOps <= 0 {
		c.MaxTxnOps = defaultMaxTxnOps
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Store is a store.Store, store.Watcher and store.Initializer on etcd. Its
// methods are safe for concurrent use.
type Store struct {
	cfg  Config
	cli  *clientv3.Client
	log  *slog.Logger
	keys keys

	mu      sync.Mutex
	loadRev int64 // revision of the last Load; Watch starts after it

	closeOnce sync.Once
	closed    chan struct{}
}

var (
	_ store.Store       = (*Store)(nil)
	_ store.Watcher     = (*Store)(nil)
	_ store.Initializer = (*Store)(nil)
)

// Open connects to the cluster. It fails if no endpoint answers within
// DialTimeout (an error wrapping store.ErrUnavailable) or if the
// configuration is wrong (ErrConfig). Open does not need a quorum: a store
// opened during an outage works once the cluster recovers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: no endpoints", ErrConfig)
	}
	for _, ep := range cfg.Endpoints {
		if err := checkEndpoint(ep); err != nil {
			return nil, err
		}
	}
	tlsCfg, err := tlsConfig(cfg)
	if err != nil {
		return nil, err
	}
	if cfg.Username != "" && cfg.Password == "" {
		return nil, fmt.Errorf("%w: a username without a password", ErrConfig)
	}
	// The client logs every retried call at warn level; the store's own
	// errors say what failed, so only the client's errors are passed on.
	minLevel := zapcore.ErrorLevel
	if cfg.Logger.Enabled(ctx, slog.LevelDebug) {
		minLevel = zapcore.WarnLevel
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		// Keepalives notice a dead member under a long-lived watch. etcd
		// refuses pings more often than every 5 s.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		TLS:                  tlsCfg,
		Username:             cfg.Username,
		Password:             cfg.Password,
		Logger:               zaplog.New(cfg.Logger.With("component", "etcd-client"), minLevel),
		Context:              context.WithoutCancel(ctx),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: etcd at %s: %v", store.ErrUnavailable, strings.Join(cfg.Endpoints, ","), err)
	}
	// clientv3.New does not wait for a connection. A serializable read is
	// answered by any member, even one without a quorum: it shows that an
	// endpoint is there and that the credentials are accepted.
	if _, err := cli.Get(dctx, cfg.Prefix+"admin", clientv3.WithSerializable(), clientv3.WithCountOnly()); err != nil {
		cli.Close()
		if dctx.Err() != nil && ctx.Err() == nil {
			// gRPC does not say why (refused, TLS handshake, DNS): list
			// what to check.
			return nil, fmt.Errorf("%w: no etcd endpoint of %s answered within %s (is etcd running there, and do the scheme and TLS files match its own?)",
				store.ErrUnavailable, strings.Join(cfg.Endpoints, ","), cfg.DialTimeout)
		}
		return nil, fmt.Errorf("%w: etcd at %s: %v", store.ErrUnavailable, strings.Join(cfg.Endpoints, ","), err)
	}
	return &Store{
		cfg:    cfg,
		cli:    cli,
		log:    cfg.Logger,
		keys:   keys{prefix: cfg.Prefix},
		closed: make(chan struct{}),
	}, nil
}

// checkEndpoint refuses what clientv3 would accept and then never reach, so
// a typo is reported at once, not as a timeout.
func checkEndpoint(ep string) error {
	hostport := ep
	if i := strings.Index(ep, "://"); i >= 0 {
		u, err := url.Parse(ep)
		if err != nil {
			return fmt.Errorf("%w: endpoint %q: %v", ErrConfig, ep, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return fmt.Errorf("%w: endpoint %q: scheme must be http or https", ErrConfig, ep)
		}
		if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
			return fmt.Errorf("%w: endpoint %q: want scheme://host:port and nothing more", ErrConfig, ep)
		}
		hostport = u.Host
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%w: endpoint %q: want host:port, http://host:port or https://host:port", ErrConfig, ep)
	}
	return nil
}

func tlsConfig(cfg Config) (*tls.Config, error) {
	if cfg.CAFile == "" && cfg.CertFile == "" && cfg.KeyFile == "" {
		return nil, nil
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, fmt.Errorf("%w: a client certificate needs both a certificate and a key file", ErrConfig)
	}
	info := transport.TLSInfo{CertFile: cfg.CertFile, KeyFile: cfg.KeyFile, TrustedCAFile: cfg.CAFile}
	tc, err := info.ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("%w: TLS: %v", ErrConfig, err)
	}
	return tc, nil
}

// Close closes the connection to etcd; a running Watch returns. It is safe
// to call more than once.
func (s *Store) Close() error {
	var err error
	s.closeOnce.Do(func() {
		close(s.closed)
		err = s.cli.Close()
	})
	if err != nil && !isCanceled(err) {
		return fmt.Errorf("%w: closing etcd client: %v", store.ErrUnavailable, err)
	}
	return nil
}

// Ping is a linearizable read: it succeeds only while a quorum of the cluster
// answers, so a replica cut off from the majority reports not ready.
func (s *Store) Ping(ctx context.Context) error {
	return s.do(ctx, "ping", true, func(ctx context.Context) error {
		_, err := s.cli.Get(ctx, s.keys.admin(), clientv3.WithCountOnly())
		return err
	})
}
