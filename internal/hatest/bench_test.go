package hatest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"

	"github.com/consortium/consortium/internal/httpapi"
)

// TestHABenchmark repeats the registrar benchmark of internal/bench (same
// population, same loads, see docs/benchmarks.md) against real registrar
// processes: SQLite with one replica, then etcd (three `consortium etcd`
// processes) with three replicas, the load spread evenly over the replicas.
// It prints one Markdown table with both side by side. It runs only with
// HA_BENCH=1, and should be run without -race:
//
//	HA_BENCH=1 go test -run TestHABenchmark -count=1 -v -timeout 30m ./internal/hatest/
//
// internal/bench cannot be imported (its code is all in _test files), so
// this is a compact equivalent: the load generator builds requests by hand
// and reads every body to the end without decoding it, as there. Unlike
// internal/bench, the registrars are real processes: they run with the
// GOMEMLIMIT docs/ha.md advises for replicas (replicaMemLimit), or the one
// in the environment (the table says which).
func TestHABenchmark(t *testing.T) {
	if os.Getenv("HA_BENCH") != "1" {
		t.Skip("set HA_BENCH=1 to run the HA benchmark")
	}
	if raceEnabled {
		t.Log("WARNING: the load generator is built with -race; its figures are not comparable to docs/benchmarks.md")
	}
	pop, err := genPopulation()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("population: %d nodes + %d new, generated in %s", len(pop.nodes), len(pop.fresh), pop.genTime.Round(time.Millisecond))
	var cols []benchResult
	for _, kind := range []string{"sqlite", "etcd"} {
		var res benchResult
		t.Run(kind, func(t *testing.T) { res = runBench(t, kind, pop) })
		cols = append(cols, res)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| benchmark | metric | %s | %s |\n|---|---|---|---|\n", cols[0].name, cols[1].name)
	for i, row := range cols[0].rows {
		other := "(not run)"
		if i < len(cols[1].rows) {
			other = cols[1].rows[i].value
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.bench, row.metric, row.value, other)
	}
	t.Log(b.String())
	fmt.Println(b.String())
}

// The population of internal/bench/fixture_test.go: 10,000 nodes in 10
// members; the first public node of m00 sees ~8,000 peers; the 1,000
// non-bootnodes of m01 are the watchers, and a new node of m01 changes
// every one of their sets.
var benchLayout = []struct {
	name                    string
	size, boot, valid, publ int
}{
	{"m00", 7000, 2, 3, 100}, {"m01", 1002, 2, 4, 16},
	{"m02", 250, 2, 1, 123}, {"m03", 250, 2, 1, 123}, {"m04", 250, 2, 1, 123}, {"m05", 250, 2, 1, 123},
	{"m06", 250, 2, 1, 123}, {"m07", 250, 2, 1, 123}, {"m08", 249, 2, 1, 123}, {"m09", 249, 2, 1, 123},
}

const (
	benchFresh   = 3000 // new registrations, in member "fresh"
	benchRounds  = 2    // watcher rounds
	benchWorkers = 64
)

type bspec struct {
	member, role, id string
	body             []byte
}

type benchPop struct {
	nodes    []bspec
	target   int   // the ~8,000-peer node
	watchers []int // m01's non-bootnodes
	fresh    []bspec
	changes  []bspec // new m01 tx nodes, one per round
	members  []string
	genTime  time.Duration
}

func genPopulation() (*benchPop, error) {
	start := time.Now()
	type want struct {
		member, role string
		mi, i        int
	}
	p := &benchPop{target: -1}
	var ws []want
	for mi, m := range benchLayout {
		p.members = append(p.members, m.name)
		for i := range m.size {
			role := "tx"
			switch {
			case i < m.boot:
				role = "bootnode"
			case i < m.boot+m.valid:
				role = "validator"
			case i < m.boot+m.valid+m.publ:
				role = "public"
			}
			if m.name == "m00" && role == "public" && p.target < 0 {
				p.target = len(ws)
			}
			if m.name == "m01" && role != "bootnode" {
				p.watchers = append(p.watchers, len(ws))
			}
			ws = append(ws, want{m.name, role, mi, i})
		}
	}
	total := len(ws)
	p.members = append(p.members, "fresh")
	for i := range benchFresh {
		ws = append(ws, want{"fresh", "tx", len(benchLayout), i})
	}
	for i := range benchRounds {
		ws = append(ws, want{"m01", "tx", 1, 2000 + i})
	}
	all := make([]bspec, len(ws))
	var next atomic.Int64
	errs := make(chan error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				k := int(next.Add(1) - 1)
				if k >= len(ws) {
					return
				}
				w := ws[k]
				s, err := signSpec(w.member, w.role, w.mi, w.i)
				if err != nil {
					errs <- err
					return
				}
				all[k] = s
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	p.nodes, p.fresh, p.changes = all[:total], all[total:total+benchFresh], all[total+benchFresh:]
	p.genTime = time.Since(start)
	return p, nil
}

func signSpec(member, role string, mi, i int) (bspec, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return bspec{}, err
	}
	text, id, err := signRecord(key, net.IPv4(10, byte(mi), byte(i/250), byte(i%250+1)))
	if err != nil {
		return bspec{}, err
	}
	req := httpapi.RegisterRequest{ENR: text, Role: role}
	if role == "public" {
		if req.PublicENR, _, err = signRecord(key, net.IPv4(198, 18, byte(mi), byte(i%250+1))); err != nil {
			return bspec{}, err
		}
	}
	body, err := json.Marshal(req)
	return bspec{member: member, role: role, id: id, body: body}, err
}

func signRecord(key *ecdsa.PrivateKey, ip net.IP) (string, string, error) {
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

type benchRow struct{ bench, metric, value string }

type benchResult struct {
	name string
	rows []benchRow
}

func (r *benchResult) add(bench, metric, format string, a ...any) {
	r.rows = append(r.rows, benchRow{bench, metric, fmt.Sprintf(format, a...)})
}

// benchTarget is the registrars under load, reached over HTTP on loopback.
type benchTarget struct {
	rs    []*replica
	hc    *http.Client
	creds map[string]string
}

// home is the replica that serves node k (round-robin).
func (b *benchTarget) home(k int) string { return b.rs[k%len(b.rs)].url() }

func (b *benchTarget) post(ctx context.Context, base, path string, s bspec, body []byte, codes ...int) error {
	req, err := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+b.creds[s.member])
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.hc.Do(req)
	if err != nil {
		return err
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range codes {
		if resp.StatusCode == c {
			return nil
		}
	}
	return fmt.Errorf("POST %s%s: HTTP %d: %s", base, path, resp.StatusCode, bytes.TrimSpace(rb))
}

var benchRenewBody = []byte(`{"status":{"client":"Geth/v1.17.10-stable/linux-amd64/go1.26","head":1234567,"peers":25,"syncing":false}}`)

type answer struct {
	status int
	etag   string
	index  uint64
	bytes  int64
	done   time.Time
}

// peers GETs a set, reading the body to the end without decoding it.
func (b *benchTarget) peers(ctx context.Context, base string, s bspec, query, inm string) (answer, error) {
	u := base + "/v1/nodes/" + s.id + "/peers"
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+b.creds[s.member])
	if inm != "" {
		req.Header.Set("If-None-Match", inm)
	}
	resp, err := b.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	a := answer{status: resp.StatusCode, etag: resp.Header.Get("ETag")}
	a.index, _ = strconv.ParseUint(resp.Header.Get("X-Consortium-Index"), 10, 64)
	a.bytes, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	a.done = time.Now()
	if err == nil && a.status != http.StatusOK && a.status != http.StatusNotModified {
		err = fmt.Errorf("GET %s: HTTP %d", u, a.status)
	}
	return a, err
}

// parked sums the watchers gauge of every replica.
func (b *benchTarget) parked(ctx context.Context) (int, error) {
	n := 0
	for _, r := range b.rs {
		req, _ := http.NewRequestWithContext(ctx, "GET", r.url()+"/metrics", nil)
		resp, err := b.hc.Do(req)
		if err != nil {
			return 0, err
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "consortium_registrar_watchers "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				n += int(f)
			}
		}
		resp.Body.Close()
	}
	return n, nil
}

// runConcurrent calls fn(i) for i in [0, n) from workers goroutines and
// returns each call's latency and the wall time; it stops at the first
// error.
func runConcurrent(workers, n int, fn func(i int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Bool
	var errOnce sync.Once
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				if err := fn(i); err != nil {
					errOnce.Do(func() { first = err })
					failed.Store(true)
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	return lat, time.Since(start), first
}

// rssMB reads a process's VmRSS or VmHWM in MB (10^6 bytes).
func rssMB(pid int, field string) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024 / 1e6
		}
	}
	return 0
}
