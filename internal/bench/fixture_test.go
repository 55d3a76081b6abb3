package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/consortium/consortium/internal/bench/load"
	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/registrartest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/prometheus/client_golang/prometheus"
)

// The population and the load generator are internal/bench/load's, shared
// with the HA benchmark of internal/hatest.

// benchTTL: leases must outlive the whole run; no renewal loop runs beside
// the benchmarks.
const benchTTL = time.Hour

var (
	popOnce sync.Once
	pop     *load.Population
	popErr  error
)

// thePopulation generates every key and signed record once per test binary,
// in parallel on all cores.
func thePopulation() (*load.Population, error) {
	popOnce.Do(func() { pop, popErr = load.Generate() })
	return pop, popErr
}

// registrar is a registrar under test, reached over HTTP on 127.0.0.1.
type registrar struct {
	*load.Target

	// In-process only: the registry (for the commit instant of a change)
	// and the server's metrics (for the number of parked watchers).
	reg     *registry.Registry
	metrics *prometheus.Registry
}

// newRegistrar is the load generator's view of the registrar at url.
func newRegistrar(url, admin string) *registrar {
	return &registrar{Target: &load.Target{URLs: []string{url}, HC: load.NewHTTPClient(), Admin: admin, Creds: map[string]string{}}}
}

func (r *registrar) addMembers(ctx context.Context, names []string) error {
	c, err := registrarclient.New(registrarclient.Config{URL: r.URL(), Credential: r.Admin, HTTPClient: r.HC})
	if err != nil {
		return err
	}
	r.Creds = map[string]string{}
	for _, n := range names {
		m, err := c.AddMember(ctx, n)
		if err != nil {
			return fmt.Errorf("adding member %s: %w", n, err)
		}
		r.Creds[n] = m.Credential
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// registerAll registers the 10,000 setup nodes with 64 concurrent clients.
func registerAll(ctx context.Context, r *registrar, p *load.Population) (time.Duration, error) {
	_, el, err := load.RunConcurrent(64, len(p.Nodes), func(i int) error { return r.Register(ctx, r.URL(), p.Nodes[i]) })
	return el, err
}

// The in-process registrar: registry + httpapi on a real SQLite file in a
// temp dir, served by net/http on 127.0.0.1. Built once, shared by the
// benchmarks, torn down by TestMain.
type inproc struct {
	*registrar
	pop       *load.Population
	setupTime time.Duration
	regTime   time.Duration
}

var (
	fixOnce  sync.Once
	fix      *inproc
	fixErr   error
	cleanups []func()
	cleanMu  sync.Mutex
)

func atExit(f func()) {
	cleanMu.Lock()
	cleanups = append(cleanups, f)
	cleanMu.Unlock()
}

func runCleanups() {
	cleanMu.Lock()
	defer cleanMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func theFixture() (*inproc, error) {
	fixOnce.Do(func() { fix, fixErr = buildFixture() })
	return fix, fixErr
}

func buildFixture() (*inproc, error) {
	start := time.Now()
	p, err := thePopulation()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "consortium-bench-")
	if err != nil {
		return nil, err
	}
	atExit(func() { os.RemoveAll(dir) })
	ctx := context.Background()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	mreg := prometheus.NewRegistry()
	// The shared in-process registrar (registrartest), started for the
	// whole test binary rather than one benchmark: stopped by runCleanups.
	// RateLimit 1e9/s per credential: the limiter must not cap the benchmark
	// (the production default is 2,000/s per credential).
	h, err := registrartest.Start(dir, registrartest.Options{
		Registry: registry.Config{TTL: benchTTL},
		API:      httpapi.Config{RateLimit: 1e9, Metrics: mreg, MaxWait: 5 * time.Minute},
		Logger:   quiet,
	})
	if err != nil {
		return nil, err
	}
	atExit(func() {
		if err := h.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the in-process registrar:", err)
		}
	})
	r := newRegistrar(h.URL, h.Admin)
	r.reg, r.metrics = h.Registry, mreg
	r.CountParked = func(context.Context) (int, error) { return r.gatherWatchers() }
	if err := r.addMembers(ctx, p.Members); err != nil {
		return nil, err
	}
	regTime, err := registerAll(ctx, r, p)
	if err != nil {
		return nil, fmt.Errorf("registering the 10,000 setup nodes: %w", err)
	}
	return &inproc{registrar: r, pop: p, setupTime: time.Since(start), regTime: regTime}, nil
}

// gatherWatchers reads the in-process server's watcher gauge.
func (r *registrar) gatherWatchers() (int, error) {
	mfs, err := r.metrics.Gather()
	if err != nil {
		return 0, err
	}
	for _, mf := range mfs {
		if mf.GetName() == "consortium_registrar_watchers" && len(mf.GetMetric()) == 1 {
			return int(mf.GetMetric()[0].GetGauge().GetValue()), nil
		}
	}
	return 0, errors.New("no consortium_registrar_watchers gauge")
}

// loopbackCeiling serves body from a bare net/http handler on 127.0.0.1 and
// reads it n times from `workers` clients, exactly as the peer-set reads do:
// what this machine's loopback, net/http and the load generator allow for a
// body of that size, whatever the registrar does.
func loopbackCeiling(body []byte, workers, n int) (float64, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body)
	})}
	go hs.Serve(ln)
	defer hs.Close()
	r := newRegistrar("http://"+ln.Addr().String(), "")
	ctx := context.Background()
	_, el, err := load.RunConcurrent(workers, n, func(int) error {
		_, err := r.Peers(ctx, r.URL(), load.Spec{ID: "ceiling"}, "", "", nil)
		return err
	})
	return float64(n) / el.Seconds(), err
}
