// Package registrartest runs a registrar inside a test: a registry on a real
// SQLite file, the real HTTP API set up as `consortium registrar` sets it up
// (httpapi's Prepare: connection limits, header and idle timeouts), served by
// a real http.Server on 127.0.0.1. It is the one in-process harness for tests
// that need a registrar; it is imported only by _test files.
package registrartest

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store/sqlite"
)

// Bounds on waiting for the parts to stop and for the port to come free
// again: a part that does not stop fails the test instead of hanging it.
const (
	stopTimeout   = 10 * time.Second
	listenTimeout = 10 * time.Second
)

// Options tune the registrar. The zero value is the registrar's defaults,
// quiet.
type Options struct {
	// Registry configures the registry; its Logger defaults to Logger. Set
	// Now (a testutil.Clock's) for lease tests without sleeping.
	Registry registry.Config
	// API configures the HTTP API; its Registry is set here, its Logger
	// defaults to Logger.
	API httpapi.Config
	// Mount builds handlers mounted beside the API (added to API.Extra) on
	// the registry, such as the dashboard at /ui/. Called at every start.
	Mount func(*registry.Registry) map[string]http.Handler
	// Server adjusts the http.Server before it serves. Its defaults are the
	// registrar's (cmd/consortium): a 30 s read timeout, 16 KiB of headers.
	Server func(*http.Server)
	// TLS serves https, HTTP/2 offered, with a certificate for 127.0.0.1
	// made for this registrar; Client trusts it.
	TLS bool
	// Manual leaves the registry's Run loop (lease expiry, write-behind of
	// renewals) off, for tests that call Reap themselves; renewals are then
	// not written to the store, and a Restart does not see them. Default:
	// on, as in the registrar.
	Manual bool
	// Logger for every part. Default: discards.
	Logger *slog.Logger
}

// Registrar is a running in-process registrar.
type Registrar struct {
	// URL is the base URL, http://127.0.0.1:port (https with TLS).
	URL string
	// Addr is the address it listens on; a restart keeps it.
	Addr string
	// Admin is the administrator's credential.
	Admin string
	// Dir is the data directory (registrar.db inside).
	Dir string
	// Registry is the registry the API serves; a restart replaces it.
	Registry *registry.Registry

	opts   Options
	tls    *certPair
	client *http.Client
	run    *running // nil while stopped
}

// running is what Stop has to stop.
type running struct {
	st     *sqlite.Store
	hs     *http.Server
	cancel context.CancelFunc
	done   chan struct{} // closed when the registry's Run returns
	served chan error    // Serve's return
}

// New starts a registrar in a temporary directory of t and stops it when
// the test ends. It fails the test if the registrar cannot start or stop.
func New(t testing.TB, o Options) *Registrar {
	t.Helper()
	r, err := Start(t.TempDir(), o)
	if err != nil {
		t.Fatalf("starting the registrar: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("stopping the registrar: %v", err)
		}
	})
	return r
}

// Start starts a registrar on data directory dir, for a fixture that
// outlives one test (a benchmark's); the caller stops it with Stop.
func Start(dir string, o Options) (*Registrar, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// A transport of its own, so Stop closes only this registrar's idle
	// connections.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	r := &Registrar{Addr: "127.0.0.1:0", Dir: dir, opts: o, client: &http.Client{Transport: tr}}
	if o.TLS {
		pair, err := newCert()
		if err != nil {
			return nil, fmt.Errorf("making the TLS certificate: %w", err)
		}
		r.tls = pair
		pool := x509.NewCertPool()
		pool.AddCert(pair.leaf)
		r.client.Transport = trusting(pool)
	}
	if err := r.start(); err != nil {
		return nil, err
	}
	return r, nil
}

// Client is an HTTP client for this registrar (it trusts its certificate).
// It has no timeout of its own: blocking queries and streams use it too.
func (r *Registrar) Client() *http.Client { return r.client }

// Store is the running registrar's SQLite store, nil while it is stopped.
// A test may close it to see the registrar lose its store; Stop closes it
// again, which does nothing.
func (r *Registrar) Store() *sqlite.Store {
	if r.run == nil {
		return nil
	}
	return r.run.st
}

// Restart starts a stopped registrar again on the same address and data
// directory, as a restarted process would.
func (r *Registrar) Restart() error {
	if r.run != nil {
		return errors.New("restart: the registrar is running")
	}
	return r.start()
}

func (r *Registrar) start() error {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, r.Dir)
	if err != nil {
		return fmt.Errorf("opening the SQLite store in %s: %w", r.Dir, err)
	}
	reg, err := r.openRegistry(ctx, st)
	if err != nil {
		st.Close()
		return err
	}
	ln, err := listen(r.Addr)
	if err != nil {
		st.Close()
		return err
	}
	r.Addr, r.Registry = ln.Addr().String(), reg
	r.URL = "http://" + r.Addr
	if r.tls != nil {
		r.URL = "https://" + r.Addr
	}
	r.serve(ctx, st, reg, ln)
	return nil
}

// openRegistry loads the registry and, on its first start, creates the
// administrator's credential.
func (r *Registrar) openRegistry(ctx context.Context, st *sqlite.Store) (*registry.Registry, error) {
	cfg := r.opts.Registry
	if cfg.Logger == nil {
		cfg.Logger = r.opts.Logger
	}
	reg, err := registry.Open(ctx, st, cfg)
	if err != nil {
		return nil, fmt.Errorf("loading the registry: %w", err)
	}
	cred, created, err := reg.EnsureAdmin(ctx)
	if err != nil {
		return nil, fmt.Errorf("creating the administrator credential: %w", err)
	}
	if created {
		r.Admin = cred.String()
	}
	return reg, nil
}

// serve runs the registry's loop (unless Manual) and the HTTP API on ln.
func (r *Registrar) serve(ctx context.Context, st *sqlite.Store, reg *registry.Registry, ln net.Listener) {
	cfg := r.opts.API
	cfg.Registry = reg
	if cfg.Logger == nil {
		cfg.Logger = r.opts.Logger
	}
	if r.opts.Mount != nil {
		extra := map[string]http.Handler{}
		for k, h := range cfg.Extra {
			extra[k] = h
		}
		for k, h := range r.opts.Mount(reg) {
			extra[k] = h
		}
		cfg.Extra = extra
	}
	api := httpapi.New(cfg)
	hs := &http.Server{
		Handler:        api,
		ReadTimeout:    30 * time.Second,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	if r.opts.Server != nil {
		r.opts.Server(hs)
	}
	ln = api.Prepare(hs, ln)
	rctx, cancel := context.WithCancel(ctx)
	run := &running{st: st, hs: hs, cancel: cancel, done: make(chan struct{}), served: make(chan error, 1)}
	if r.opts.Manual {
		close(run.done)
	} else {
		go func() { defer close(run.done); reg.Run(rctx) }()
	}
	if r.tls != nil {
		hs.TLSConfig = r.tls.serverConfig()
		go func() { run.served <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { run.served <- hs.Serve(ln) }()
	}
	r.run = run
}

// Stop closes the server and every connection (blocking queries and
// streams end), ends the registry's loop, which writes the last renewals,
// and closes the store. It returns an error if a part does not stop within
// a bound. Stopping a stopped registrar does nothing.
func (r *Registrar) Stop() error {
	run := r.run
	if run == nil {
		return nil
	}
	r.run = nil
	r.client.CloseIdleConnections()
	var errs []error
	if err := run.hs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the server: %w", err))
	}
	run.cancel()
	// One bound for both waits; a context's Done can be waited on twice.
	bound, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	select {
	case err := <-run.served:
		if !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("serving: %w", err))
		}
	case <-bound.Done():
		errs = append(errs, fmt.Errorf("the server did not stop within %v", stopTimeout))
	}
	select {
	case <-run.done:
	case <-bound.Done():
		errs = append(errs, fmt.Errorf("the registry's loop did not stop within %v", stopTimeout))
	}
	if err := run.st.Close(); err != nil {
		errs = append(errs, fmt.Errorf("closing the store: %w", err))
	}
	return errors.Join(errs...)
}

// listen listens on addr, waiting up to listenTimeout for a port a
// stopped registrar held to come free.
func listen(addr string) (net.Listener, error) {
	deadline := time.Now().Add(listenTimeout)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			return ln, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
