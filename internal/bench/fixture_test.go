package bench

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store/sqlite"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/prometheus/client_golang/prometheus"
)

// The population: 10,000 nodes in 10 members, laid out so that
//   - one public node of m00 (7,000 nodes) sees ~8,000 peers: m00's 6,997
//     other non-bootnodes by private endpoint plus the 1,000 public nodes of
//     the other nine members by public endpoint (internal/registry/peers.go);
//   - m01 has exactly 1,000 non-bootnodes: the 1,000 watchers. A node joining
//     m01 changes every one of their peer sets (each holds ~1,000 peers).
const (
	totalNodes  = 10000
	bigMember   = "m00"
	watchMember = "m01"
	freshMember = "fresh" // new registrations land here, outside every measured peer set
	freshNodes  = 3000
	changeNodes = 4 // m01 tx nodes registered to trigger watcher rounds
	changeBoots = 2 // m01 bootnodes registered to trigger watcher rounds
	watchers    = 1000
	benchTTL    = time.Hour // leases must outlive the whole run; no renewal loop runs beside the benchmarks
)

// memberLayout is (name, size, bootnodes, validators, public); the rest are tx nodes.
var memberLayout = []struct {
	name                    string
	size, boot, valid, publ int
}{
	{"m00", 7000, 2, 3, 100},
	{"m01", 1002, 2, 4, 16},
	{"m02", 250, 2, 1, 123},
	{"m03", 250, 2, 1, 123},
	{"m04", 250, 2, 1, 123},
	{"m05", 250, 2, 1, 123},
	{"m06", 250, 2, 1, 123},
	{"m07", 250, 2, 1, 123},
	{"m08", 249, 2, 1, 123},
	{"m09", 249, 2, 1, 123},
}

// spec is one pre-signed node: its member, role, ID and registration body.
type spec struct {
	member, role, id string
	regBody          []byte
}

type population struct {
	nodes    []spec // the 10,000 setup nodes
	target   int    // index in nodes of the ~8,000-peer node
	watchers []int  // indices in nodes of the 1,000 watchers
	fresh    []spec // new registrations (freshMember)
	changes  []spec // m01 tx nodes, one per watcher round
	boots    []spec // m01 bootnodes, one per watcher round
	members  []string
	genTime  time.Duration
}

var (
	popOnce sync.Once
	pop     *population
	popErr  error
)

// thePopulation generates every key and signed record once per test binary,
// in parallel on all cores.
func thePopulation() (*population, error) {
	popOnce.Do(func() { pop, popErr = generate() })
	return pop, popErr
}

type want struct {
	member, role string
	mi, i        int // member index, index inside the member (for endpoints)
}

func generate() (*population, error) {
	start := time.Now()
	p := &population{target: -1}
	var ws []want
	for mi, m := range memberLayout {
		p.members = append(p.members, m.name)
		for i := 0; i < m.size; i++ {
			role := "tx"
			switch {
			case i < m.boot:
				role = "bootnode"
			case i < m.boot+m.valid:
				role = "validator"
			case i < m.boot+m.valid+m.publ:
				role = "public"
			}
			if m.name == bigMember && role == "public" && p.target < 0 {
				p.target = len(ws)
			}
			if m.name == watchMember && role != "bootnode" {
				p.watchers = append(p.watchers, len(ws))
			}
			ws = append(ws, want{m.name, role, mi, i})
		}
	}
	if len(ws) != totalNodes || len(p.watchers) != watchers {
		return nil, fmt.Errorf("layout: %d nodes, %d watchers", len(ws), len(p.watchers))
	}
	p.members = append(p.members, freshMember)
	for i := 0; i < freshNodes; i++ {
		ws = append(ws, want{freshMember, "tx", len(memberLayout), i})
	}
	for i := 0; i < changeNodes; i++ {
		ws = append(ws, want{watchMember, "tx", 1, 2000 + i})
	}
	for i := 0; i < changeBoots; i++ {
		ws = append(ws, want{watchMember, "bootnode", 1, 2100 + i})
	}
	all := make([]spec, len(ws))
	var next atomic.Int64
	var firstErr error
	var errMu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1) - 1)
				if k >= len(ws) {
					return
				}
				s, err := makeSpec(ws[k])
				if err != nil {
					errMu.Lock()
					firstErr = err
					errMu.Unlock()
					return
				}
				all[k] = s
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	p.nodes = all[:totalNodes]
	p.fresh = all[totalNodes : totalNodes+freshNodes]
	p.changes = all[totalNodes+freshNodes : totalNodes+freshNodes+changeNodes]
	p.boots = all[totalNodes+freshNodes+changeNodes:]
	p.genTime = time.Since(start)
	return p, nil
}

func makeSpec(w want) (spec, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return spec{}, err
	}
	// Private endpoint 10.<member>.<hi>.<lo>; public endpoint in 198.18.0.0/15.
	priv := net.IPv4(10, byte(w.mi), byte(w.i/250), byte(w.i%250+1))
	text, id, err := signENR(key, priv)
	if err != nil {
		return spec{}, err
	}
	req := httpapi.RegisterRequest{ENR: text, Role: w.role}
	if w.role == "public" {
		pub := net.IPv4(198, 18, byte(w.mi), byte(w.i%250+1))
		if req.PublicENR, _, err = signENR(key, pub); err != nil {
			return spec{}, err
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		return spec{}, err
	}
	return spec{member: w.member, role: w.role, id: id, regBody: body}, nil
}

func signENR(key *ecdsa.PrivateKey, ip net.IP) (string, string, error) {
	var r enr.Record
	r.SetSeq(1)
	r.Set(enr.IP(ip))
	r.Set(enr.TCP(30303))
	r.Set(enr.UDP(30303))
	if err := enode.SignV4(&r, key); err != nil {
		return "", "", err
	}
	n, err := enode.New(enode.ValidSchemes, &r)
	if err != nil {
		return "", "", err
	}
	return n.String(), n.ID().String(), nil
}

// registrar is a registrar under test, reached over HTTP on 127.0.0.1.
type registrar struct {
	url   string
	hc    *http.Client
	admin string
	creds map[string]string // member -> credential

	// In-process only: the registry (for the commit instant of a change)
	// and the server's metrics (for the number of parked watchers).
	reg     *registry.Registry
	metrics *prometheus.Registry
}

func newHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        0, // no global cap
		MaxIdleConnsPerHost: 2048,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr}
}

func (r *registrar) addMembers(ctx context.Context, names []string) error {
	c, err := registrarclient.New(registrarclient.Config{URL: r.url, Credential: r.admin, HTTPClient: r.hc})
	if err != nil {
		return err
	}
	r.creds = map[string]string{}
	for _, n := range names {
		m, err := c.AddMember(ctx, n)
		if err != nil {
			return fmt.Errorf("adding member %s: %w", n, err)
		}
		r.creds[n] = m.Credential
	}
	return nil
}

// post sends a body with s's member credential and wants one of the codes.
func (r *registrar) post(ctx context.Context, s spec, path string, body []byte, codes ...int) error {
	req, err := http.NewRequestWithContext(ctx, "POST", r.url+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+r.creds[s.member])
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.hc.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range codes {
		if resp.StatusCode == c {
			return nil
		}
	}
	return fmt.Errorf("POST %s: HTTP %d: %s", path, resp.StatusCode, bytes.TrimSpace(b))
}

func (r *registrar) register(ctx context.Context, s spec) error {
	return r.post(ctx, s, "/v1/nodes", s.regBody, http.StatusCreated, http.StatusOK)
}

// renewBody is what an agent sends with each renewal.
var renewBody = []byte(`{"status":{"client":"Geth/v1.17.10-stable/linux-amd64/go1.26","head":1234567,"peers":25,"syncing":false}}`)

func (r *registrar) renew(ctx context.Context, s spec) error {
	return r.post(ctx, s, "/v1/nodes/"+s.id+"/renew", renewBody, http.StatusOK)
}

// peerAnswer is one peer-set response as the client saw it.
type peerAnswer struct {
	status int
	etag   string
	index  uint64
	bytes  int64
	header time.Time // response headers received
	done   time.Time // body fully read
}

// peers GETs s's peer set. The body is read to the end but not decoded, so
// the client's JSON decoding does not compete with the registrar for the CPU.
func (r *registrar) peers(ctx context.Context, s spec, query, inm string, keep io.Writer) (peerAnswer, error) {
	u := r.url + "/v1/nodes/" + s.id + "/peers"
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return peerAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+r.creds[s.member])
	if inm != "" {
		req.Header.Set("If-None-Match", inm)
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return peerAnswer{}, err
	}
	a := peerAnswer{status: resp.StatusCode, etag: resp.Header.Get("ETag"), header: time.Now()}
	a.index, _ = strconv.ParseUint(resp.Header.Get("X-Consortium-Index"), 10, 64)
	if keep == nil {
		keep = io.Discard
	}
	a.bytes, err = io.Copy(keep, resp.Body)
	resp.Body.Close()
	a.done = time.Now()
	if err != nil {
		return a, err
	}
	if a.status != http.StatusOK && a.status != http.StatusNotModified {
		return a, fmt.Errorf("GET peers of %s: HTTP %d", s.id[:8], a.status)
	}
	return a, nil
}

// runConcurrent calls fn(i) for i in [0, n) from `workers` goroutines and
// returns each call's latency (indexed by i) and the wall time of the run.
// It stops handing out work at the first error.
func runConcurrent(workers, n int, fn func(i int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Bool
	var errMu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				if err := fn(i); err != nil {
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					failed.Store(true)
					return
				}
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	return lat, time.Since(start), firstErr
}

// pct returns the p-th percentile (nearest rank) of ds; it sorts ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	k := int(float64(len(ds))*p/100+0.999999) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(ds) {
		k = len(ds) - 1
	}
	return ds[k]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// registerAll registers the 10,000 setup nodes with 64 concurrent clients.
func registerAll(ctx context.Context, r *registrar, p *population) (time.Duration, error) {
	_, el, err := runConcurrent(64, len(p.nodes), func(i int) error { return r.register(ctx, p.nodes[i]) })
	return el, err
}

// The in-process registrar: registry + httpapi on a real SQLite file in a
// temp dir, served by net/http on 127.0.0.1. Built once, shared by the
// benchmarks, torn down by TestMain.
type inproc struct {
	*registrar
	pop       *population
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
	ctx, cancel := context.WithCancel(context.Background())
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		cancel()
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := registry.Open(ctx, st, registry.Config{TTL: benchTTL, Logger: quiet})
	if err != nil {
		cancel()
		st.Close()
		return nil, err
	}
	runDone := make(chan struct{})
	go func() { defer close(runDone); reg.Run(ctx) }()
	admin, _, err := reg.EnsureAdmin(ctx)
	if err != nil {
		cancel()
		return nil, err
	}
	mreg := prometheus.NewRegistry()
	// RateLimit 1e9/s per credential: the limiter must not cap the benchmark
	// (the production default is 2,000/s per credential).
	api := httpapi.New(httpapi.Config{Registry: reg, RateLimit: 1e9, Logger: quiet, Metrics: mreg, MaxWait: 5 * time.Minute})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		return nil, err
	}
	hs := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10, ErrorLog: slog.NewLogLogger(quiet.Handler(), slog.LevelWarn)}
	go hs.Serve(ln)
	atExit(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		hs.Shutdown(sctx)
		scancel()
		hs.Close()
		cancel()
		<-runDone
		st.Close()
	})
	r := &registrar{url: "http://" + ln.Addr().String(), hc: newHTTPClient(), admin: admin.String(), reg: reg, metrics: mreg}
	if err := r.addMembers(ctx, p.members); err != nil {
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
	r := &registrar{url: "http://" + ln.Addr().String(), hc: newHTTPClient(), creds: map[string]string{}}
	ctx := context.Background()
	_, el, err := runConcurrent(workers, n, func(int) error {
		_, err := r.peers(ctx, spec{id: "ceiling"}, "", "", nil)
		return err
	})
	return float64(n) / el.Seconds(), err
}
