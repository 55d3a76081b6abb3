package agent_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/ethereum/go-ethereum/crypto"
)

// BenchmarkAgentRSS runs two agents as their own processes, each beside
// its own real geth (v1.17, two tx nodes of one member, so each has a peer
// to keep), with the registrar's default 30 s leases (a renewal every
// 10 s): `consortium agent run` (the full binary) and the agent-only
// build (./agentonly). Every minute, and at the end, it reads each agent's
// RSS split into the binary's resident pages (RssFile) and anonymous
// memory (RssAnon, heap and stacks), and its Go heap in use and goroutines
// from its /metrics, with the machine's load. Run (15 minutes):
//
//	CONSORTIUM_REQUIRE_GETH=1 go test -run '^$' -bench AgentRSS -benchtime 1x -timeout 30m ./internal/agent/
//
// CONSORTIUM_AGENT_RSS_WAIT=2m shortens the wait. GODEBUG, GOGC and
// GOMEMLIMIT set for the test reach the agents too.
func BenchmarkAgentRSS(b *testing.B) {
	wait := 15 * time.Minute
	if v := os.Getenv("CONSORTIUM_AGENT_RSS_WAIT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("CONSORTIUM_AGENT_RSS_WAIT: %v", err)
		}
		wait = d
	}
	s := newSuiteTTL(b, gethtest.V117, 30*time.Second)
	m := s.addMember("m1")
	dir := b.TempDir()
	full, only := filepath.Join(dir, "consortium"), filepath.Join(dir, "consortium-agent")
	for bin, pkg := range map[string]string{full: "../../cmd/consortium", only: "./agentonly"} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", pkg, err, out)
		}
	}
	type run struct {
		name    string
		pid     int
		metrics string
		node    string
	}
	var runs []*run
	for _, v := range []struct{ name, bin, sub string }{{"full", full, "agent run"}, {"agent-only", only, ""}} {
		g := gethtest.Start(b, gethtest.Config{Version: gethtest.V117, Bootnodes: []string{m.boot.Enode()}})
		vdir := filepath.Join(dir, v.name)
		keyFile := filepath.Join(vdir, "nodekey")
		if err := os.MkdirAll(vdir, 0o700); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(keyFile, []byte(fmt.Sprintf("%x", crypto.FromECDSA(g.Key()))), 0o600); err != nil {
			b.Fatal(err)
		}
		addr := freeAddr(b)
		args := append(strings.Fields(v.sub), "--rpc", g.IPCPath(), "--role", "tx", "--nodekey", keyFile,
			"--state-dir", filepath.Join(vdir, "state"), "--registrar", s.reg.url(), "--listen", addr)
		cmd := exec.Command(v.bin, args...)
		cmd.Env = append(os.Environ(), "CONSORTIUM_CREDENTIAL="+m.cred)
		cmd.Stderr = io.Discard
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
		runs = append(runs, &run{name: v.name, pid: cmd.Process.Pid, metrics: "http://" + addr + "/metrics", node: g.ID().String()})
	}
	// Both registered, and peered with each other: the agents are working.
	deadline := time.Now().Add(90 * time.Second)
	for _, r := range runs {
		for {
			view, err := s.reg.reg.Node(registry.Principal{Admin: true}, r.node)
			if err == nil && view.Live && view.Status != nil && view.Status.Peers >= 1 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%s agent: its node is not registered and peered within 90 s", r.name)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	sample := func(r *run) (rss, anon, file, heap, goroutines float64) {
		st := procStatus(b, r.pid)
		mt := scrape(r.metrics)
		return st["VmRSS"] / 1024, st["RssAnon"] / 1024, st["RssFile"] / 1024, mt["go_memstats_heap_inuse_bytes"] / (1 << 20), mt["go_goroutines"]
	}
	start := time.Now()
	for {
		left := wait - time.Since(start)
		for _, r := range runs {
			rss, anon, file, heap, gr := sample(r)
			b.Logf("+%4.1f min %-10s RSS %5.1f MiB (binary %5.1f, anon %4.1f), heap in use %4.1f MiB, %2.0f goroutines; load %s",
				time.Since(start).Minutes(), r.name, rss, file, anon, heap, gr, loadavg())
		}
		if left <= 0 {
			break
		}
		time.Sleep(min(left, time.Minute))
	}
	for _, r := range runs {
		rss, anon, file, heap, gr := sample(r)
		b.ReportMetric(rss, r.name+"-rss-MiB")
		b.ReportMetric(file, r.name+"-file-MiB")
		b.ReportMetric(anon, r.name+"-anon-MiB")
		b.ReportMetric(heap, r.name+"-heap-MiB")
		b.ReportMetric(gr, r.name+"-goroutines")
	}
}

func freeAddr(b *testing.B) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// procStatus reads /proc/PID/status's kB fields.
func procStatus(b *testing.B, pid int) map[string]float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(raw), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			out[k], _ = strconv.ParseFloat(f[0], 64)
		}
	}
	return out
}

// scrape reads unlabelled gauges from a Prometheus text endpoint.
func scrape(url string) map[string]float64 {
	out := map[string]float64{}
	resp, err := http.Get(url)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(body), "\n") {
		if f := strings.Fields(l); len(f) == 2 && !strings.HasPrefix(l, "#") {
			out[f[0]], _ = strconv.ParseFloat(f[1], 64)
		}
	}
	return out
}

func loadavg() string {
	raw, _ := os.ReadFile("/proc/loadavg")
	return strings.Join(strings.Fields(string(raw))[:3], " ")
}
