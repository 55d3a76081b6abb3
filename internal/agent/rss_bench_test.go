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

// BenchmarkAgentRSS runs agents as their own processes, each beside its
// own real geth (v1.17, tx nodes of one member, so each has peers to
// keep), with the registrar's default 30 s leases (a renewal every 10 s):
// the agent-only build (./agentonly) compiled as deploy/build-images.sh
// compiles it for the image (CGO_ENABLED=0 -trimpath -ldflags "-s -w"),
// three times: as it runs by default (GOGC=50, an 8 MiB soft limit, its
// binary's pages released now and then), without the release
// (CONSORTIUM_AGENT_RELEASE=off), and with neither (Go's GOGC=100, no
// limit); with CONSORTIUM_AGENT_RSS_FULL=1 also
// `consortium agent run` (the full binary, a plain go build). Every
// minute, and at the end, it reads each agent's RSS split into the
// binary's resident pages (RssFile) and anonymous memory (RssAnon, heap
// and stacks), and its Go heap in use and goroutines from its /metrics,
// with the machine's load. Run (15 minutes):
//
//	CONSORTIUM_REQUIRE_GETH=1 flock /tmp/consortium-heavy.lock go test -run '^$' -bench AgentRSS -benchtime 1x -timeout 30m ./internal/agent/
//
// CONSORTIUM_AGENT_RSS_WAIT=2m shortens the wait.
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
	only := filepath.Join(dir, "consortium-agent")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", only, "./agentonly")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build ./agentonly: %v\n%s", err, out)
	}
	variants := []struct {
		name, bin, sub string
		env            []string
	}{
		{"agent-only", only, "", nil},
		{"agent-only-keep-pages", only, "", []string{"CONSORTIUM_AGENT_RELEASE=off"}},
		{"agent-only-go-defaults", only, "", []string{"GOGC=100", "GOMEMLIMIT=off", "CONSORTIUM_AGENT_RELEASE=off"}},
	}
	if os.Getenv("CONSORTIUM_AGENT_RSS_FULL") != "" {
		full := filepath.Join(dir, "consortium")
		if out, err := exec.Command("go", "build", "-o", full, "../../cmd/consortium").CombinedOutput(); err != nil {
			b.Fatalf("build consortium: %v\n%s", err, out)
		}
		variants = append(variants, struct {
			name, bin, sub string
			env            []string
		}{"full", full, "agent run", nil})
	}
	type run struct {
		name    string
		pid     int
		metrics string
		node    string
	}
	var runs []*run
	for _, v := range variants {
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
		cmd.Env = append(append(os.Environ(), "CONSORTIUM_CREDENTIAL="+m.cred), v.env...)
		cmd.Stderr = io.Discard
		cmd.WaitDelay = time.Minute // Wait copies stderr: bound it should a process outside the group hold the pipe
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
			view, err := s.reg.Registry.Node(registry.Principal{Admin: true}, r.node)
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
			// Printed, not logged: go test keeps only ten lines of a
			// benchmark's log.
			fmt.Printf("+%4.1f min %-22s RSS %5.1f MiB (binary %5.1f, anon %4.1f), heap in use %4.1f MiB, %2.0f goroutines; load %s\n",
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
