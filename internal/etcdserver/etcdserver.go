// Package etcdserver runs an etcd member inside the consortium binary, so an
// operator who wants several registrar replicas can run the etcd cluster they
// share from the same static executable (`consortium etcd`), with no second
// program to install. It is a thin wrapper around etcd's embed package: the
// project's Config in, a ready member out, etcd's zap logs routed to slog.
package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"

	"github.com/consortium/consortium/internal/etcdserver/zaplog"
)

// Config is one member's configuration. Zero values mean the default given
// in each field's comment.
type Config struct {
	// Name is the member's name in InitialCluster. Default "default".
	Name string
	// DataDir holds the member's WAL and database (created 0700). Required.
	DataDir string

	// ClientURLs are the addresses clients connect to (etcd's
	// --listen-client-urls). Default http://127.0.0.1:2379.
	ClientURLs []string
	// PeerURLs are the addresses other members connect to
	// (--listen-peer-urls). Default http://127.0.0.1:2380.
	PeerURLs []string
	// AdvertiseClientURLs and AdvertisePeerURLs are the addresses announced
	// to clients and peers. Default: the listen URLs, which must then name a
	// host (not 0.0.0.0 or [::]).
	AdvertiseClientURLs []string
	AdvertisePeerURLs   []string

	// InitialCluster lists every member of a new cluster as
	// "n1=http://h1:2380,n2=http://h2:2380". Default: this member alone
	// (Name=AdvertisePeerURLs). Ignored once DataDir holds data.
	InitialCluster string
	// ClusterState is "new" (bootstrap with InitialCluster) or "existing"
	// (join a running cluster this member was added to). Default "new".
	ClusterState string
	// ClusterToken keeps members of different clusters from joining each
	// other by mistake. Default "consortium".
	ClusterToken string

	// QuotaBytes is the database size at which etcd refuses writes until
	// an operator compacts and defragments. Default: etcd's 2 GiB.
	QuotaBytes int64
	// CompactionRetention is how much history (past revisions) is kept;
	// older history is compacted, periodically. A registrar replica whose
	// watch falls further behind reloads the whole state. The registrar
	// writes every lease renewal, so without compaction the database would
	// grow until it hit QuotaBytes. Default 10 minutes.
	CompactionRetention time.Duration

	// HeartbeatInterval and ElectionTimeout are raft's timings. Defaults:
	// etcd's 100 ms and 1 s. ElectionTimeout is also how long a lost leader
	// goes unnoticed.
	HeartbeatInterval time.Duration
	ElectionTimeout   time.Duration

	// StartTimeout bounds how long Start waits for the member to join a
	// quorum and serve. Default 1 minute.
	StartTimeout time.Duration

	// TLS, optional. A certificate and key turn on TLS for that side (the
	// URLs must then be https); a CA file also requires and verifies client
	// certificates (etcd's --client-cert-auth / --peer-client-cert-auth).
	ClientCertFile, ClientKeyFile, ClientCAFile string
	PeerCertFile, PeerKeyFile, PeerCAFile       string

	// Logger receives etcd's warnings and errors (and its info messages
	// when the logger is enabled for debug). Default: slog.Default().
	Logger *slog.Logger
}

const (
	defaultName         = "default"
	defaultClientURL    = "http://127.0.0.1:2379"
	defaultPeerURL      = "http://127.0.0.1:2380"
	defaultClusterToken = "consortium"
	defaultRetention    = 10 * time.Minute
	defaultStartTimeout = time.Minute
)

func (c Config) withDefaults() Config {
	if c.Name == "" {
		c.Name = defaultName
	}
	if len(c.ClientURLs) == 0 {
		c.ClientURLs = []string{defaultClientURL}
	}
	if len(c.PeerURLs) == 0 {
		c.PeerURLs = []string{defaultPeerURL}
	}
	if len(c.AdvertiseClientURLs) == 0 {
		c.AdvertiseClientURLs = c.ClientURLs
	}
	if len(c.AdvertisePeerURLs) == 0 {
		c.AdvertisePeerURLs = c.PeerURLs
	}
	if c.InitialCluster == "" {
		parts := make([]string, len(c.AdvertisePeerURLs))
		for i, u := range c.AdvertisePeerURLs {
			parts[i] = c.Name + "=" + u
		}
		c.InitialCluster = strings.Join(parts, ",")
	}
	if c.ClusterState == "" {
		c.ClusterState = embed.ClusterStateFlagNew
	}
	if c.ClusterToken == "" {
		c.ClusterToken = defaultClusterToken
	}
	if c.CompactionRetention == 0 {
		c.CompactionRetention = defaultRetention
	}
	if c.StartTimeout == 0 {
		c.StartTimeout = defaultStartTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// ErrConfig is wrapped by every configuration error of Start.
var ErrConfig = errors.New("etcd server: bad configuration")

// Server is a running etcd member.
type Server struct {
	e         *embed.Etcd
	endpoints []string
	stop      context.CancelFunc // ends the client streams
	closeOnce sync.Once
}

// Start starts a member and waits until it serves clients: it has joined a
// cluster with a leader (for a new cluster, a majority of InitialCluster must
// be started too). It gives up after StartTimeout or when ctx ends.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	cfg = cfg.withDefaults()
	streams, stop := context.WithCancel(context.Background())
	ec, err := embedConfig(cfg, streams)
	if err != nil {
		stop()
		return nil, err
	}
	e, err := embed.StartEtcd(ec)
	if err != nil {
		stop()
		return nil, fmt.Errorf("etcd server %q: %w", cfg.Name, err)
	}
	abort := func() {
		stop()
		hardStop(e)
	}
	timer := time.NewTimer(cfg.StartTimeout)
	defer timer.Stop()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		abort()
		return nil, fmt.Errorf("etcd server %q failed while starting: %w", cfg.Name, err)
	case <-timer.C:
		abort()
		return nil, fmt.Errorf("etcd server %q not ready after %s: is a majority of the cluster (%s) started and reachable on its peer URLs?",
			cfg.Name, cfg.StartTimeout, cfg.InitialCluster)
	case <-ctx.Done():
		abort()
		return nil, fmt.Errorf("etcd server %q: start interrupted: %w", cfg.Name, ctx.Err())
	}
	return &Server{e: e, endpoints: append([]string(nil), cfg.AdvertiseClientURLs...), stop: stop}, nil
}

// hardStop stops a member without handing over leadership. It also works on
// a member that is not ready, on which embed's Close alone would wait for
// client servers that start only once the member is ready (etcd issue 9533).
func hardStop(e *embed.Etcd) {
	e.Server.HardStop()
	e.Close()
}

// embedConfig translates cfg. Client streams (watches) end when streams
// does, so that stopping a member does not wait for its watchers to leave.
func embedConfig(cfg Config, streams context.Context) (*embed.Config, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: no data directory", ErrConfig)
	}
	ec := embed.NewConfig()
	ec.Name = cfg.Name
	ec.Dir = cfg.DataDir
	var err error
	if ec.ListenClientUrls, err = parseURLs("client URL", cfg.ClientURLs, true); err != nil {
		return nil, err
	}
	if ec.ListenPeerUrls, err = parseURLs("peer URL", cfg.PeerURLs, true); err != nil {
		return nil, err
	}
	if ec.AdvertiseClientUrls, err = parseURLs("advertised client URL", cfg.AdvertiseClientURLs, false); err != nil {
		return nil, err
	}
	if ec.AdvertisePeerUrls, err = parseURLs("advertised peer URL", cfg.AdvertisePeerURLs, false); err != nil {
		return nil, err
	}
	ec.InitialCluster = cfg.InitialCluster
	switch cfg.ClusterState {
	case embed.ClusterStateFlagNew, embed.ClusterStateFlagExisting:
		ec.ClusterState = cfg.ClusterState
	default:
		return nil, fmt.Errorf("%w: cluster state %q, want %q or %q", ErrConfig, cfg.ClusterState, embed.ClusterStateFlagNew, embed.ClusterStateFlagExisting)
	}
	ec.InitialClusterToken = cfg.ClusterToken
	if cfg.QuotaBytes < 0 {
		return nil, fmt.Errorf("%w: negative quota %d", ErrConfig, cfg.QuotaBytes)
	}
	ec.QuotaBackendBytes = cfg.QuotaBytes
	if cfg.CompactionRetention > 0 {
		ec.AutoCompactionMode = "periodic"
		ec.AutoCompactionRetention = cfg.CompactionRetention.String()
	}
	if cfg.HeartbeatInterval > 0 {
		ec.TickMs = uint(cfg.HeartbeatInterval.Milliseconds())
	}
	if cfg.ElectionTimeout > 0 {
		ec.ElectionMs = uint(cfg.ElectionTimeout.Milliseconds())
	}
	// grpc's graceful stop, in embed's Close, waits for open streams up to
	// etcd's request timeout (7 s): a registrar's watch stays open forever.
	// Ending the streams first lets it reconnect to another member at once.
	ec.GRPCAdditionalServerOptions = append(ec.GRPCAdditionalServerOptions, grpc.ChainStreamInterceptor(
		func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			ctx, cancel := context.WithCancel(ss.Context())
			defer cancel()
			defer context.AfterFunc(streams, cancel)()
			return handler(srv, stoppableStream{ServerStream: ss, ctx: ctx})
		}))
	// A restarted member rebinds its ports at once, though old connections
	// may linger in TIME_WAIT.
	ec.SocketOpts.ReuseAddress = true

	ec.ClientTLSInfo.CertFile, ec.ClientTLSInfo.KeyFile = cfg.ClientCertFile, cfg.ClientKeyFile
	if cfg.ClientCAFile != "" {
		ec.ClientTLSInfo.TrustedCAFile, ec.ClientTLSInfo.ClientCertAuth = cfg.ClientCAFile, true
	}
	ec.PeerTLSInfo.CertFile, ec.PeerTLSInfo.KeyFile = cfg.PeerCertFile, cfg.PeerKeyFile
	if cfg.PeerCAFile != "" {
		ec.PeerTLSInfo.TrustedCAFile, ec.PeerTLSInfo.ClientCertAuth = cfg.PeerCAFile, true
	}

	// etcd logs every peer it cannot reach and every slow request at warn
	// level or below; its info level is a running commentary.
	minLevel, level := zapcore.WarnLevel, "warn"
	if cfg.Logger.Enabled(context.Background(), slog.LevelDebug) {
		minLevel, level = zapcore.InfoLevel, "info"
	}
	ec.LogLevel = level
	ec.Logger = "zap"
	ec.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zaplog.New(cfg.Logger.With("component", "etcd", "member", cfg.Name), minLevel))
	return ec, nil
}

// parseURLs checks URLs as etcd will use them, with the field's name in the
// error. Listen URLs may name an unspecified address; advertised ones may not.
func parseURLs(what string, in []string, listen bool) ([]url.URL, error) {
	out := make([]url.URL, 0, len(in))
	for _, s := range in {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s %q: %v", ErrConfig, what, s, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("%w: %s %q: scheme must be http or https", ErrConfig, what, s)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || port == "" {
			return nil, fmt.Errorf("%w: %s %q: want scheme://host:port", ErrConfig, what, s)
		}
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("%w: %s %q: a URL with a path", ErrConfig, what, s)
		}
		if !listen {
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				return nil, fmt.Errorf("%w: %s %q: clients and peers cannot connect to an unspecified address; advertise a reachable one", ErrConfig, what, s)
			}
		}
		out = append(out, *u)
	}
	return out, nil
}

// ClientEndpoints are the member's advertised client URLs, as a store's
// Endpoints.
func (s *Server) ClientEndpoints() []string { return append([]string(nil), s.endpoints...) }

// Err delivers a fatal error of the running member (a listener failed). A
// daemon stops on it.
func (s *Server) Err() <-chan error { return s.e.Err() }

// stoppableStream is a client stream whose context also ends when the member
// stops.
type stoppableStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s stoppableStream) Context() context.Context { return s.ctx }

// Close stops the member gracefully (a leader hands over leadership first,
// which takes up to etcd's request timeout, about 7 s, when no other member
// answers) and waits for its goroutines. Clients' watches on it end at once
// and move to other members. It is safe to call more than once, and after
// Kill.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.stop()
		s.e.Close()
	})
}

// Kill stops the member at once, without handing over leadership, as a
// crash would; what it acknowledged is on disk, as after kill -9. Tests use
// it to stop members quickly.
func (s *Server) Kill() {
	s.closeOnce.Do(func() {
		s.stop()
		hardStop(s.e)
	})
}
