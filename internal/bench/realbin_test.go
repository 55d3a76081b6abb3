package bench

// The registrar benchmark on the real binary (issue 19): `consortium
// registrar` built once and run in its own process with its defaults (the
// built-in memory limit, the dashboard, SQLite), driven over loopback by the
// load generator in this test process. Run it under the heavy-test lock:
//
//	REAL_BENCH=1 flock /tmp/consortium-heavy.lock go test -count=1 -run TestRealBinary -v -timeout 60m ./internal/bench/
//
// (make bench-real). REAL_BENCH_BIN names a binary to run instead of
// building this tree's (to compare with an older commit). REAL_BENCH_RUNS sets the number of runs (default 3),
// each against a fresh registrar and data directory; the table gives every
// run and the range. Beside each figure: the registrar's CPU per request,
// the share of a core the load generator and every other process on the
// machine used meanwhile, and the 1-minute load average.
//
// REAL_BENCH_ARGS adds registrar flags (to compare a setting with the
// defaults). REAL_BENCH_PROFILE=dir starts the registrar with --pprof-listen and saves
// a CPU profile of the first seconds of each load into dir (phase-N.pprof,
// read them with `go tool pprof -top dir/phase-2.pprof`).
//
// Two flags differ from a production start, for the same reasons as in the
// in-process benchmarks: --rate-limit (the default 2,000/s per credential
// would cap the load, not the registrar) and --ttl 1h (no renewal loop runs
// beside the loads, so leases must outlive the run).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/bench/load"
	"github.com/consortium/consortium/internal/proctest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
)

// realFig is one figure of one run: the value the range is taken over, its
// unit, and what the machine did meanwhile.
type realFig struct {
	metric, unit string
	val          float64
	note         string
}

type realRun []realFig

func (r *realRun) add(metric, unit string, val float64, note string) {
	*r = append(*r, realFig{metric, unit, val, note})
}

func TestRealBinary(t *testing.T) {
	if os.Getenv("REAL_BENCH") != "1" {
		t.Skip("set REAL_BENCH=1 to run the real-binary benchmark (make bench-real)")
	}
	runs := 3
	if v, err := strconv.Atoi(os.Getenv("REAL_BENCH_RUNS")); err == nil && v > 0 {
		runs = v
	}
	pop, err := thePopulation()
	if err != nil {
		t.Fatal(err)
	}
	bin := os.Getenv("REAL_BENCH_BIN") // another build to compare, e.g. an older commit's
	if bin == "" {
		if bin, err = proctest.Build(t.TempDir()); err != nil {
			t.Fatal(err)
		}
	}
	var all []realRun
	for i := range runs {
		t.Run(fmt.Sprintf("run%d", i+1), func(t *testing.T) { all = append(all, runReal(t, bin, pop)) })
	}
	if len(all) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| metric | range over %d runs |", len(all))
	for i := range all {
		fmt.Fprintf(&b, " run %d |", i+1)
	}
	b.WriteString("\n|---|---|")
	for range all {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for k, f := range all[0] {
		lo, hi := math.Inf(1), math.Inf(-1)
		var cells []string
		for _, r := range all {
			if k >= len(r) {
				cells = append(cells, "(not run)")
				continue
			}
			lo, hi = min(lo, r[k].val), max(hi, r[k].val)
			cells = append(cells, fmt.Sprintf("%s %s; %s", num(r[k].val), r[k].unit, r[k].note))
		}
		fmt.Fprintf(&b, "| %s | %s–%s %s | %s |\n", f.metric, num(lo), num(hi), f.unit, strings.Join(cells, " | "))
	}
	t.Log(b.String())
	fmt.Println(b.String())
}

func num(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

// realSeed writes seed.json for the population's members and returns its
// path, the administrator's credential and the members'.
func realSeed(t *testing.T, names []string) (string, string, map[string]string) {
	admin, err := auth.New(auth.Admin)
	if err != nil {
		t.Fatal(err)
	}
	s := registry.Seed{AdminHash: auth.Hash(admin.Secret)}
	creds := map[string]string{}
	for _, n := range names {
		c, err := auth.New(n)
		if err != nil {
			t.Fatal(err)
		}
		s.Members = append(s.Members, registry.SeedMember{Name: n, Hash: auth.Hash(c.Secret)})
		creds[n] = c.String()
	}
	b, _ := json.Marshal(s)
	path := filepath.Join(t.TempDir(), "seed.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, admin.String(), creds
}

// meter measures, over a window, the CPU the registrar, this process (the
// load generator) and the rest of the machine used.
type meter struct {
	pid            int
	t0             time.Time
	srv, gen, busy float64
}

func startMeter(pid int) *meter {
	return &meter{pid: pid, t0: time.Now(), srv: procCPU(pid), gen: procCPU(os.Getpid()), busy: machineBusy()}
}

// note is "<server CPU per request> µs/req; load generator X %, others Y %
// of a core; load L"; n == 0 leaves out the per-request figure.
func (m *meter) note(n int) (perReq float64, s string) {
	el := time.Since(m.t0).Seconds()
	srv := procCPU(m.pid) - m.srv
	gen := procCPU(os.Getpid()) - m.gen
	others := max(0, machineBusy()-m.busy-srv-gen)
	s = fmt.Sprintf("registrar %.0f %%, loadgen %.0f %%, others %.0f %% of a core; load %s", 100*srv/el, 100*gen/el, 100*others/el, loadavg1())
	if n > 0 {
		perReq = srv / float64(n) * 1e6
		s = fmt.Sprintf("%.0f µs CPU/req; ", perReq) + s
	}
	return perReq, s
}

// procCPU is the CPU time (user + system, seconds) pid has used.
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ
}

// machineBusy is the CPU time (seconds, all cores) the machine has spent
// not idle since boot.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait, guest
			continue
		}
		x, _ := strconv.ParseFloat(v, 64)
		busy += x
	}
	return busy / 100
}

func loadavg1() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

// startProfile asks the registrar at pprofAddr for a CPU profile of the next
// 2 seconds and saves it as dir/phase-N.pprof; the returned func waits for
// it. Without dir it does nothing.
func startProfile(t *testing.T, dir, pprofAddr string, phase int, metric string) (wait func()) {
	if dir == "" {
		return func() {}
	}
	// The goroutine reports through done, not t, so that it may outlive a
	// test that gave up on it.
	done := make(chan string, 1)
	go func() {
		path := filepath.Join(dir, fmt.Sprintf("phase-%d.pprof", phase))
		if err := saveProfile(pprofAddr, path); err != nil {
			done <- fmt.Sprintf("profile of phase %d: %v", phase, err)
			return
		}
		done <- fmt.Sprintf("profile of phase %d (%s): %s", phase, metric, path)
	}()
	return func() {
		t.Helper()
		t.Log(testutil.Wait(t, time.Minute, fmt.Sprintf("the profile of phase %d", phase), done))
	}
}

// saveProfile saves a 2-second CPU profile from the pprof server at addr.
func saveProfile(addr, path string) error {
	resp, err := http.Get("http://" + addr + "/debug/pprof/profile?seconds=2")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// gzipRead GETs url asking for gzip and returns the size of the compressed
// body, which it reads but does not decompress (as the plain reads do not
// decode theirs).
func gzipRead(ctx context.Context, tg *load.Target, url, cred string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := tg.HC.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && (resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Encoding") != "gzip") {
		err = fmt.Errorf("HTTP %d, Content-Encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	return n, err
}

// rssSplit says what the resident pages of pid are: anonymous (the Go heap,
// stacks, SQLite's cache) and file-backed (the binary's text and data).
func rssSplit(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	kb := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if f := strings.Fields(v); ok && len(f) > 0 {
			kb[k], _ = strconv.ParseFloat(f[0], 64)
		}
	}
	return fmt.Sprintf("anonymous %.0f MB, file-backed %.0f MB", kb["RssAnon"]*1024/1e6, kb["RssFile"]*1024/1e6)
}

// runReal starts one registrar and takes every figure.
func runReal(t *testing.T, bin string, pop *load.Population) realRun {
	ps := proctest.New(t)
	seedPath, admin, creds := realSeed(t, pop.Members)
	ports := proctest.FreePorts(t, 2)
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	args := []string{"registrar", "--listen", addr, "--data", t.TempDir(), "--seed", seedPath,
		"--ttl", "1h", "--rate-limit", "1000000000", "--log-level", "warn"}
	profDir := os.Getenv("REAL_BENCH_PROFILE")
	pprofAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	if profDir != "" {
		args = append(args, "--pprof-listen", pprofAddr)
	}
	// REAL_BENCH_ARGS adds flags, e.g. "--memory-limit 80" to try a setting.
	args = append(args, strings.Fields(os.Getenv("REAL_BENCH_ARGS"))...)
	p := ps.Start("registrar", bin, args...)
	base := "http://" + addr
	tg := &load.Target{URLs: []string{base}, HC: load.NewHTTPClient(), Admin: admin, Creds: creds}
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if a, err := tg.Get(ctx, base, "/readyz", "", ""); err == nil && a.Status == http.StatusOK {
			break
		}
		if p.Exited() || time.Now().After(deadline) {
			t.Fatal("the registrar did not become ready")
		}
		time.Sleep(100 * time.Millisecond)
	}
	pid := p.Pid()
	var res realRun
	phase := 0
	run := func(metric string, workers, n int, fn func(i int) error) {
		t.Helper()
		phase++
		prof := startProfile(t, profDir, pprofAddr, phase, metric)
		defer prof()
		m := startMeter(pid)
		lat, el, err := load.RunConcurrent(workers, n, fn)
		if err != nil {
			t.Fatalf("%s: %v", metric, err)
		}
		per, note := m.note(n)
		p99 := ms(load.Pct(lat, 99))
		res.add(metric, "/s", float64(n)/el.Seconds(), fmt.Sprintf("p99 %.1f ms; %s", p99, note))
		res.add("  server CPU per request: "+strings.SplitN(metric, " (", 2)[0], "µs", per, "")
		res.add("  p99: "+strings.SplitN(metric, " (", 2)[0], "ms", p99, "")
		t.Logf("%s: %.0f/s, p99 %.1f ms; %s", metric, float64(n)/el.Seconds(), p99, note)
	}

	run("register 10,000 nodes into an empty store (64 clients)", 64, len(pop.Nodes), func(i int) error {
		return tg.Register(ctx, base, pop.Nodes[i])
	})
	const renewals = 50000
	run("renewals (64 clients, 50,000)", 64, renewals, func(i int) error {
		return tg.Renew(ctx, base, pop.Nodes[i%len(pop.Nodes)])
	})
	target := pop.Nodes[pop.Target]
	first, err := tg.Peers(ctx, base, target, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	run("full reads of the ~8,000-peer set (16 clients, 2,000)", 16, 2000, func(int) error {
		a, err := tg.Peers(ctx, base, target, "", "", nil)
		if err == nil && (a.Status != http.StatusOK || a.Bytes != first.Bytes) {
			err = fmt.Errorf("HTTP %d, %d bytes (want 200, %d)", a.Status, a.Bytes, first.Bytes)
		}
		return err
	})
	var gzBytes atomic.Int64
	run("full reads, Accept-Encoding: gzip (16 clients, 2,000)", 16, 2000, func(int) error {
		n, err := gzipRead(ctx, tg, base+"/v1/nodes/"+target.ID+"/peers", tg.Creds[target.Member])
		gzBytes.Store(n)
		return err
	})
	res[len(res)-3].note = fmt.Sprintf("%.0f KB per answer (%.0f KB plain); ", float64(gzBytes.Load())/1e3, float64(first.Bytes)/1e3) + res[len(res)-3].note
	run("304 reads, If-None-Match (16 clients, 20,000)", 16, 20000, func(int) error {
		a, err := tg.Peers(ctx, base, target, "", first.ETag, nil)
		if err == nil && a.Status != http.StatusNotModified {
			err = fmt.Errorf("HTTP %d, want 304", a.Status)
		}
		return err
	})
	se, err := tg.Get(ctx, base, "/staticenodes?network="+load.BigMember, load.BigMember, "")
	if err != nil {
		t.Fatal(err)
	}
	run("GET /staticenodes, 7,000-node member (16 clients, 1,000)", 16, 1000, func(int) error {
		a, err := tg.Get(ctx, base, "/staticenodes?network="+load.BigMember, load.BigMember, "")
		if err == nil && (a.Status != http.StatusOK || a.Bytes != se.Bytes) {
			err = fmt.Errorf("HTTP %d, %d bytes (want 200, %d)", a.Status, a.Bytes, se.Bytes)
		}
		return err
	})
	rss, hwm := load.ProcMem(pid)
	res.add("RSS after registrations and reads (peak)", "MB", rss, fmt.Sprintf("peak %.0f MB; %s", hwm, rssSplit(pid)))

	// Idle: nobody connected, 10,000 live nodes.
	time.Sleep(2 * time.Second)
	m := startMeter(pid)
	srv0 := procCPU(pid)
	time.Sleep(10 * time.Second)
	idle := 100 * (procCPU(pid) - srv0) / time.Since(m.t0).Seconds()
	_, note := m.note(0)
	res.add("idle registrar at 10,000 nodes, 10 s, no client", "% of a core", idle, note)
	t.Logf("idle: %.2f %% of a core; %s", idle, note)

	// One change -> 1,000 blocked watchers, JSON answers.
	ws := pop.WatcherSpecs()
	st, err := tg.PrimeWatchers(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	var lat []time.Duration
	var bytes int64
	m = startMeter(pid)
	const rounds = 3
	for round := range rounds {
		rd, err := tg.WatchRound(ctx, ws, st, pop.Changes[round], "")
		if err != nil {
			t.Fatalf("watcher round %d: %v", round+1, err)
		}
		for _, a := range rd.Answers {
			lat = append(lat, a.Done.Sub(rd.PostAt))
			bytes += a.Bytes
		}
	}
	_, note = m.note(0)
	p99 := ms(load.Pct(lat, 99))
	res.add("one change -> 1,000 blocked watchers, JSON, p99 (3 rounds)", "ms", p99,
		fmt.Sprintf("p50 %.1f ms, %.0f KB per answer; %s", ms(load.Pct(lat, 50)), float64(bytes)/float64(len(lat))/1e3, note))
	t.Logf("watchers: p99 %.1f ms; %s", p99, note)
	// The same with deltas (?delta=1): each watcher holds its answer's
	// ETag and is told what changed since.
	lat, bytes = nil, 0
	m = startMeter(pid)
	for round, change := range []load.Spec{pop.Changes[3], pop.Boots[0], pop.Boots[1]} {
		rd, err := tg.WatchRoundQuery(ctx, ws, st, change, "delta=1")
		if err != nil {
			t.Fatalf("delta watcher round %d: %v", round+1, err)
		}
		for _, a := range rd.Answers {
			lat = append(lat, a.Done.Sub(rd.PostAt))
			bytes += a.Bytes
		}
	}
	_, note = m.note(0)
	p99 = ms(load.Pct(lat, 99))
	res.add("one change -> 1,000 blocked watchers, delta=1, p99 (3 rounds)", "ms", p99,
		fmt.Sprintf("p50 %.1f ms, %.0f bytes per answer; %s", ms(load.Pct(lat, 50)), float64(bytes)/float64(len(lat)), note))
	t.Logf("delta watchers: p99 %.1f ms; %s", p99, note)
	rss, hwm = load.ProcMem(pid)
	res.add("RSS after the watcher rounds (peak)", "MB", rss, fmt.Sprintf("peak %.0f MB; %s", hwm, rssSplit(pid)))

	run("new registrations, 10,000 present (64 clients, 3,000)", 64, len(pop.Fresh), func(i int) error {
		return tg.Post(ctx, base, "/v1/nodes", pop.Fresh[i], pop.Fresh[i].Body, http.StatusCreated)
	})
	rss, hwm = load.ProcMem(pid)
	res.add("RSS at the end (peak)", "MB", rss, fmt.Sprintf("peak %.0f MB; %s; load %s", hwm, rssSplit(pid), loadavg1()))
	p.Kill()
	return res
}
