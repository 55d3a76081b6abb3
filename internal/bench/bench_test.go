package bench

// The registrar's performance benchmarks (issue 2, "Performance"). Run:
//
//	go test -run='^$' -bench=. -benchtime=1x ./internal/bench/   (make bench)
//
// Each benchmark does a bounded amount of work once, whatever b.N is, reports
// its figures with b.ReportMetric, and adds rows to the table TestMain prints
// at the end. The 10,000 signed records and the in-process registrar are
// built on first use (sync.Once) and shared; plain `go test` builds nothing.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/bench/load"
)

func TestMain(m *testing.M) {
	code := m.Run()
	runCleanups()
	printTable(os.Stdout)
	os.Exit(code)
}

// ---- the summary table ----

// row is one line of the table. Rows are grouped by benchmark (sec), in the
// order the benchmarks ran; inside a group the targets come first.
type row struct{ sec, metric, target, measured, verdict string }

var (
	rowsMu sync.Mutex
	rows   []row
	curSec string
)

// begin names the benchmark the next rows belong to.
func begin(b *testing.B) {
	rowsMu.Lock()
	curSec = strings.TrimPrefix(b.Name(), "Benchmark")
	rowsMu.Unlock()
}

func addRow(r row) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	if r.sec == "" {
		r.sec = curSec
	}
	for i := range rows {
		if rows[i].sec == r.sec && rows[i].metric == r.metric { // a benchmark run twice keeps its last figures
			rows[i] = r
			return
		}
	}
	rows = append(rows, r)
}

func check(metric, target, measured string, ok bool) {
	v := "pass"
	if !ok {
		v = "**FAIL**"
	}
	addRow(row{"", metric, target, measured, v})
}

func info(metric, measured string) { addRow(row{"", metric, "", measured, "info"}) }

func printTable(w io.Writer) {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	if len(rows) == 0 {
		return
	}
	var secs []string
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.sec] {
			seen[r.sec] = true
			secs = append(secs, r.sec)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| benchmark | metric | target | measured | result |")
	fmt.Fprintln(w, "|---|---|---|---|---|")
	for _, sec := range secs {
		first := true
		// Targets, then other figures, then the CPU accounting.
		for pass := 0; pass < 3; pass++ {
			for _, r := range rows {
				kind := 1
				if r.target != "" {
					kind = 0
				} else if strings.HasPrefix(r.metric, "cpu ") {
					kind = 2
				}
				if r.sec != sec || kind != pass {
					continue
				}
				name := ""
				if first {
					name, first = sec, false
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s |\n", name, r.metric, r.target, r.measured, r.verdict)
			}
		}
	}
	fmt.Fprintln(w)
}

// ---- helpers ----

func fixture(b *testing.B) *inproc {
	b.Helper()
	f, err := theFixture()
	if err != nil {
		b.Fatalf("building the benchmark registrar: %v", err)
	}
	if !setupReported {
		setupReported = true
		addRow(row{"setup (once)", fmt.Sprintf("generate keys and sign records (10,000 + %d nodes, all cores)", len(f.pop.Fresh)+len(f.pop.Changes)+len(f.pop.Boots)), "", f.pop.GenTime.Round(time.Millisecond).String(), "info"})
		addRow(row{"setup (once)", "register 10,000 nodes into an empty store (64 clients)", "",
			fmt.Sprintf("%s (%.0f/s)", f.regTime.Round(time.Millisecond), float64(load.TotalNodes)/f.regTime.Seconds()), "info"})
	}
	return f
}

var setupReported bool

// quietWait bounds how long a phase waits for other processes to calm down.
const quietWait = 10 * time.Second

// measure runs n calls of fn from workers clients as one measured phase:
// it waits for a quiet machine, notes the phase's CPU use as cpuMetric,
// stops the benchmark's timer, and reports the rate (in unit) and the p50
// and p99 latencies in ms, which it returns for the checks.
func measure(b *testing.B, cpuMetric, unit string, workers, n int, fn func(i int) error) (rate, p50, p99 float64) {
	waitQuiet(quietWait)
	cpu := startCPU(0)
	lat, el, err := load.RunConcurrent(workers, n, fn)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	info(cpuMetric, cpu.String())
	rate = float64(n) / el.Seconds()
	p50, p99 = ms(load.Pct(lat, 50)), ms(load.Pct(lat, 99))
	b.ReportMetric(rate, unit)
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	return rate, p50, p99
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func f0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }

// ---- benchmarks ----

// BenchmarkRenewals: 50,000 lease renewals (each with an agent's status
// report) of the 10,000 nodes, from 64 concurrent clients.
func BenchmarkRenewals(b *testing.B) {
	begin(b)
	f := fixture(b)
	b.ResetTimer()
	const n, workers = 50000, 64
	ctx := context.Background()
	rate, p50, p99 := measure(b, "cpu during renewals (share of all cores)", "renewals/s", workers, n,
		func(i int) error { return f.Renew(ctx, f.URL(), f.pop.Nodes[i%load.TotalNodes]) })
	check("renewals/s (64 clients, 50,000 renewals)", ">= 5,000/s", f0(rate)+"/s", rate >= 5000)
	check("renewal latency p99 (p50)", "< 20 ms", fmt.Sprintf("%.2f ms (p50 %.2f ms)", p99, p50), p99 < 20)
}

// BenchmarkPeerSetReads: the ~8,000-peer node's set, JSON, from 16
// concurrent clients: full answers from the cache, then the 304 path.
func BenchmarkPeerSetReads(b *testing.B) {
	begin(b)
	f := fixture(b)
	b.ResetTimer()
	ctx := context.Background()
	target := f.pop.Nodes[f.pop.Target]

	// The first read at this index computes and renders the set.
	var buf bytes.Buffer
	t := time.Now()
	first, err := f.Peers(ctx, f.URL(), target, "", "", &buf)
	if err != nil {
		b.Fatal(err)
	}
	cold := time.Since(t)
	var set struct {
		Static    []string `json:"static"`
		Trusted   []string `json:"trusted"`
		Bootnodes []string `json:"bootnodes"`
		ENRs      []string `json:"enrs"`
	}
	if err := json.Unmarshal(buf.Bytes(), &set); err != nil {
		b.Fatal(err)
	}
	if len(set.Static) < 7900 || len(set.Static) > 8100 {
		b.Fatalf("target node sees %d peers, want about 8,000", len(set.Static))
	}
	listMiB := func(l []string) float64 {
		n := 0
		for _, s := range l {
			n += len(s) + 3
		}
		return float64(n) / (1 << 20)
	}

	const workers, full, notMod = 16, 2000, 20000
	waitQuiet(quietWait)
	cpu := startCPU(0)
	lat, el, err := load.RunConcurrent(workers, full, func(int) error {
		a, err := f.Peers(ctx, f.URL(), target, "", "", nil)
		if err == nil && (a.Status != http.StatusOK || a.Bytes != first.Bytes) {
			err = fmt.Errorf("full read: HTTP %d, %d bytes", a.Status, a.Bytes)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	info("cpu during full peer-set reads (share of all cores)", cpu.String())
	rate, p99 := float64(full)/el.Seconds(), ms(load.Pct(lat, 99))

	waitQuiet(quietWait)
	cpu = startCPU(0)
	lat3, el3, err := load.RunConcurrent(workers, notMod, func(int) error {
		a, err := f.Peers(ctx, f.URL(), target, "", first.ETag, nil)
		if err == nil && a.Status != http.StatusNotModified {
			err = fmt.Errorf("conditional read: HTTP %d, want 304", a.Status)
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	info("cpu during 304 peer-set reads (share of all cores)", cpu.String())
	rate3, p99_3 := float64(notMod)/el3.Seconds(), ms(load.Pct(lat3, 99))
	mib := float64(first.Bytes) / (1 << 20)
	b.ReportMetric(float64(len(set.Static)), "peers")
	b.ReportMetric(float64(first.Bytes), "body-bytes")
	b.ReportMetric(rate, "reads/s")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(rate3, "304-reads/s")
	b.ReportMetric(p99_3, "304-p99-ms")
	b.ReportMetric(ms(cold), "uncached-ms")
	check(fmt.Sprintf("peer-set reads/s, cached, full 200 JSON (16 clients, %d reads)", full), ">= 1,000/s",
		fmt.Sprintf("%s/s (p99 %.1f ms, %.2f GiB/s)", f0(rate), p99, rate*mib/1024), rate >= 1000)
	check(fmt.Sprintf("peer-set reads/s, If-None-Match -> 304 (16 clients, %d reads)", notMod), ">= 1,000/s",
		fmt.Sprintf("%s/s (p99 %.2f ms)", f0(rate3), p99_3), rate3 >= 1000)
	info("the ~8,000-peer set", fmt.Sprintf("%d peers + %d bootnodes; JSON body %.2f MiB = static %.2f + trusted (a copy of static) %.2f + enrs %.2f",
		len(set.Static), len(set.Bootnodes), mib, listMiB(set.Static), listMiB(set.Trusted), listMiB(set.ENRs)))
	info("read uncached (the first after a change)", f1(ms(cold))+" ms")
	// The ceiling: the same bytes from a bare net/http handler; and the same
	// set without the "trusted" copy and the ENRs.
	waitQuiet(quietWait)
	cpu = startCPU(0)
	ceil, err := loopbackCeiling(buf.Bytes(), workers, full)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(ceil, "ceiling-reads/s")
	info(fmt.Sprintf("ceiling: the same %.2f MiB body from a bare net/http handler, same clients", mib), fmt.Sprintf("%s/s (cpu: %s)", f0(ceil), cpu))
	slim, _ := json.Marshal(map[string]any{"static": set.Static, "bootnodes": set.Bootnodes})
	waitQuiet(quietWait)
	cpu = startCPU(0)
	ceilSlim, err := loopbackCeiling(slim, workers, full)
	if err != nil {
		b.Fatal(err)
	}
	info(fmt.Sprintf("ceiling: a static+bootnodes-only body (%.2f MiB) from a bare handler", float64(len(slim))/(1<<20)), fmt.Sprintf("%s/s (cpu: %s)", f0(ceilSlim), cpu))
}

// watchLatencies runs rounds and returns, over all answers, (answer fully
// read - commit) and (headers received - commit), the largest POST round
// trip of the changes and the mean answer size.
func watchLatencies(b *testing.B, r *registrar, ws []load.Spec, changes []load.Spec, format string) (done, hdr []time.Duration, maxRTT time.Duration, avgBytes float64) {
	ctx := context.Background()
	st, err := r.PrimeWatchers(ctx, ws)
	if err != nil {
		b.Fatal(err)
	}
	var nbytes int64
	for _, ch := range changes {
		waitQuiet(quietWait / 2)
		before, err := r.lastEventSeq(ctx)
		if err != nil {
			b.Fatal(err)
		}
		res, err := r.WatchRound(ctx, ws, st, ch, format)
		if err != nil {
			b.Fatal(err)
		}
		commit, err := r.eventTime(ctx, before, ch.ID)
		if err != nil {
			b.Fatal(err)
		}
		if commit.Before(res.PostAt.Add(-time.Millisecond)) || commit.After(res.PostAt.Add(res.PostRTT+time.Millisecond)) {
			b.Fatalf("commit timestamp %s outside the POST [%s, +%s]", commit, res.PostAt, res.PostRTT)
		}
		maxRTT = max(maxRTT, res.PostRTT)
		for _, a := range res.Answers {
			done = append(done, a.Done.Sub(commit))
			hdr = append(hdr, a.Header.Sub(commit))
			nbytes += a.Bytes
		}
	}
	return done, hdr, maxRTT, float64(nbytes) / float64(len(done))
}

// BenchmarkWatchers: 1,000 blocking queries (index + If-None-Match, JSON as
// registrarclient.WatchPeers asks) on the 1,000 non-bootnodes of m01; a new
// tx node registered in m01 changes all their sets. A watcher's latency is
// (its answer fully read) - (the registry's timestamp of the change, taken
// right after the SQLite commit). Two rounds: 2,000 samples.
func BenchmarkWatchers(b *testing.B) {
	begin(b)
	f := fixture(b)
	b.ResetTimer()
	const rounds = 2
	waitQuiet(quietWait)
	cpu := startCPU(0)
	done, hdr, maxRTT, avg := watchLatencies(b, f.registrar, f.pop.WatcherSpecs(), f.pop.Changes[:rounds], "")
	b.StopTimer()
	info("cpu during watcher rounds, JSON (share of all cores)", cpu.String())
	p50, p99, mx := ms(load.Pct(done, 50)), ms(load.Pct(done, 99)), ms(load.Pct(done, 100))
	h50, h99 := ms(load.Pct(hdr, 50)), ms(load.Pct(hdr, 99))
	b.ReportMetric(load.Watchers, "watchers")
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(mx, "max-ms")
	b.ReportMetric(h99, "headers-p99-ms")
	b.ReportMetric(avg, "body-bytes")
	check(fmt.Sprintf("one change -> 1,000 watchers (JSON answers), answer fully read, p99 (p50) [%d rounds]", rounds), "p99 < 100 ms",
		fmt.Sprintf("%.0f ms (p50 %.0f ms, max %.0f ms)", p99, p50, mx), p99 < 100)
	info("same, response headers received, p99 (p50)", fmt.Sprintf("%.0f ms (p50 %.0f ms)", h99, h50))
	info("watcher answer size (JSON, ~1,000 peers each)", fmt.Sprintf("%.0f KiB each, %.0f MiB per round", avg/1024, avg*load.Watchers/(1<<20)))
	info("the change's own POST round trip (max)", f1(ms(maxRTT))+" ms")
}

// BenchmarkWatchersSmallAnswers: the same 1,000 watchers ask for
// format=bootnodes, and the change is a new m01 bootnode: every watcher's set
// (and ETag) changes but each answer is ~400 bytes. This separates the push
// itself (wake-up, recomputing each watcher's set) from moving the JSON.
func BenchmarkWatchersSmallAnswers(b *testing.B) {
	begin(b)
	f := fixture(b)
	b.ResetTimer()
	waitQuiet(quietWait)
	cpu := startCPU(0)
	done, _, _, avg := watchLatencies(b, f.registrar, f.pop.WatcherSpecs(), f.pop.Boots[:1], "bootnodes")
	b.StopTimer()
	info("cpu during watcher round, format=bootnodes (share of all cores)", cpu.String())
	p50, p99 := ms(load.Pct(done, 50)), ms(load.Pct(done, 99))
	b.ReportMetric(p50, "p50-ms")
	b.ReportMetric(p99, "p99-ms")
	b.ReportMetric(avg, "body-bytes")
	info("one change -> 1,000 watchers, format=bootnodes (~400-byte answers), p99 (p50)",
		fmt.Sprintf("%.0f ms (p50 %.0f ms), %.0f bytes each", p99, p50, avg))
}

// BenchmarkRegistrations: 3,000 first registrations of new nodes (each a
// signed ENR verified, written through to SQLite, change index bumped) with
// 10,000 nodes present, from 64 concurrent clients.
func BenchmarkRegistrations(b *testing.B) {
	begin(b)
	f := fixture(b)
	b.ResetTimer()
	ctx := context.Background()
	rate, p50, p99 := measure(b, "cpu during registrations (share of all cores)", "registrations/s", 64, load.FreshNodes,
		func(i int) error { return f.Register(ctx, f.URL(), f.pop.Fresh[i]) })
	check(fmt.Sprintf("new registrations/s (64 clients, %d new nodes, 10,000 present)", load.FreshNodes), ">= 1,000/s",
		fmt.Sprintf("%s/s (p50 %.1f ms, p99 %.1f ms)", f0(rate), p50, p99), rate >= 1000)
}

// BenchmarkRegistrarRSS runs `consortium registrar` as its own process,
// drives a load over HTTP (10,000 registrations, 20,000 renewals, 1 + 500
// full and 2,000 conditional reads of the ~8,000-peer set, then one round of
// 1,000 JSON watchers) and reads VmRSS and VmHWM from /proc/PID/status.
func BenchmarkRegistrarRSS(b *testing.B) {
	begin(b)
	p, err := thePopulation()
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	r, pid := startRegistrar(b)
	ctx := context.Background()
	if err := r.addMembers(ctx, p.Members); err != nil {
		b.Fatal(err)
	}
	rss0, _ := load.ProcMem(pid)
	waitQuiet(quietWait)
	cpu := startCPU(pid)
	regTime, err := registerAll(ctx, r, p)
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := load.RunConcurrent(64, 20000, func(i int) error { return r.Renew(ctx, r.URL(), p.Nodes[i%load.TotalNodes]) }); err != nil {
		b.Fatal(err)
	}
	target := p.Nodes[p.Target]
	first, err := r.Peers(ctx, r.URL(), target, "", "", nil)
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := load.RunConcurrent(16, 500, func(int) error { _, err := r.Peers(ctx, r.URL(), target, "", "", nil); return err }); err != nil {
		b.Fatal(err)
	}
	if _, _, err := load.RunConcurrent(16, 2000, func(int) error { _, err := r.Peers(ctx, r.URL(), target, "", first.ETag, nil); return err }); err != nil {
		b.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // one write-behind flush of the renewals
	rssA, _ := load.ProcMem(pid)
	heapA := r.goHeap(ctx)

	ws := p.WatcherSpecs()
	st, err := r.PrimeWatchers(ctx, ws)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.WatchRound(ctx, ws, st, p.Changes[len(p.Changes)-1], ""); err != nil {
		b.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	rssB, hwm := load.ProcMem(pid)
	heapB := r.goHeap(ctx)
	b.StopTimer()
	info("cpu during the registrar-process load (share of all cores)", cpu.String())
	b.ReportMetric(rss0, "idle-rss-MB")
	b.ReportMetric(rssA, "rss-before-watchers-MB")
	b.ReportMetric(rssB, "rss-MB")
	b.ReportMetric(hwm, "peak-rss-MB")
	info("registrar process: 10,000 registrations into an empty store (64 clients)",
		fmt.Sprintf("%s (%.0f/s)", regTime.Round(time.Millisecond), float64(load.TotalNodes)/regTime.Seconds()))
	info("registrar RSS, started, no nodes", f1(rss0)+" MB")
	check("registrar RSS after registrations, renewals and 2,501 reads of the 8,000-peer set", "< 100 MB", f1(rssA)+" MB", rssA < 100)
	check("registrar RSS after that plus one round of 1,000 JSON watchers", "< 100 MB", f1(rssB)+" MB", rssB < 100)
	info("registrar peak RSS (VmHWM)", f1(hwm)+" MB")
	info("registrar Go heap before the watchers (from its /metrics)", heapA)
	info("registrar Go heap after the watchers (from its /metrics)", heapB)
}

// startRegistrar builds cmd/consortium, starts `consortium registrar` on a
// free 127.0.0.1 port with a temp data dir, and kills it (by PID) when the
// benchmark ends, failed or not.
func startRegistrar(b *testing.B) (*registrar, int) {
	b.Helper()
	dir := b.TempDir()
	bin := filepath.Join(dir, "consortium")
	goBin, err := exec.LookPath("go")
	if err != nil && os.Getenv("GOROOT") != "" {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	} else if err != nil {
		b.Fatalf("no go command to build the registrar with: %v", err)
	}
	build := exec.Command(goBin, "build", "-o", bin, "github.com/consortium/consortium/cmd/consortium")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build ./cmd/consortium: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	data := filepath.Join(dir, "data")
	logf, err := os.Create(filepath.Join(dir, "registrar.log"))
	if err != nil {
		b.Fatal(err)
	}
	// --rate-limit 1000000: the per-credential limiter must not cap the load.
	// --ttl 1h: no lease may run out while the benchmark drives it.
	cmd := exec.Command(bin, "registrar", "--listen", addr, "--data", data, "--rate-limit", "1000000", "--ttl", "1h", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Should this test process die without running its cleanups (a -timeout
	// panic), the kernel kills the registrar too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	pid := cmd.Process.Pid
	b.Cleanup(func() {
		cmd.Process.Kill() // SIGKILL to this PID only
		cmd.Wait()
		logf.Close()
	})
	r := newRegistrar("http://"+addr, "")
	deadline := time.Now().Add(30 * time.Second)
	for {
		cred, err := os.ReadFile(filepath.Join(data, "admin.credential"))
		if err == nil && len(bytes.TrimSpace(cred)) > 0 {
			if resp, err := r.HC.Get(r.URL() + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					r.Admin = string(bytes.TrimSpace(cred))
					return r, pid
				}
			}
		}
		if time.Now().After(deadline) {
			lg, _ := os.ReadFile(logf.Name())
			b.Fatalf("registrar did not come up on %s within 30 s; log:\n%s", addr, lg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goHeap summarises the registrar's Go heap from its own /metrics. With
// GOGC=100 the next GC target is twice the heap live after the last GC.
func (r *registrar) goHeap(ctx context.Context) string {
	req, err := http.NewRequestWithContext(ctx, "GET", r.URL()+"/metrics", nil)
	if err != nil {
		return err.Error()
	}
	resp, err := r.HC.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	v := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && strings.HasPrefix(f[0], "go_memstats_") {
			v[f[0]], _ = strconv.ParseFloat(f[1], 64)
		}
	}
	mb := func(k string) float64 { return v["go_memstats_"+k+"_bytes"] / 1e6 }
	return fmt.Sprintf("heap in use %.1f MB, next GC at %.1f MB (live after the last GC ~%.1f MB), Go runtime total %.1f MB",
		mb("heap_inuse"), mb("next_gc"), mb("next_gc")/2, mb("sys"))
}
