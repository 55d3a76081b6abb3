package agent_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/ethereum/go-ethereum/crypto"
)

// BenchmarkConvergence measures, at 3 members x 3 nodes on loopback, the
// time from a new node's registration being committed to every intended
// peer listing it in admin_peers. Run:
//
//	go test -run '^$' -bench Convergence -benchtime 1x ./internal/agent/
func BenchmarkConvergence(b *testing.B) {
	for _, v := range []string{gethtest.V117, gethtest.V113} {
		b.Run(v, func(b *testing.B) { benchConvergence(b, v) })
	}
}

func benchConvergence(b *testing.B, version string) {
	tt := b
	s := newSuite(tt, version)
	var running []*tnode
	var members []*member
	for _, name := range []string{"m1", "m2", "m3"} {
		m := s.addMember(name)
		members = append(members, m)
		for _, role := range []string{"validator", "tx", "public"} {
			running = append(running, s.startNode(m, name+"-"+role, role))
		}
	}
	s.waitMesh(running, 90*time.Second)
	admin := registry.Principal{Name: "admin", Admin: true}
	var samples []time.Duration
	const rounds = 12
	for i := 0; i < rounds; i++ {
		m := members[i%len(members)]
		after := uint64(0)
		if ev := s.reg.Registry.Events(admin, 0); len(ev) > 0 {
			after = ev[len(ev)-1].Seq
		}
		n := s.startNode(m, fmt.Sprintf("%s-new%d", m.name, i), "tx")
		var committed time.Time
		deadline := time.Now().Add(60 * time.Second)
		for committed.IsZero() && time.Now().Before(deadline) {
			for _, e := range s.reg.Registry.Events(admin, after) {
				if e.Kind == registry.EventRegistered && e.Node == n.geth.ID().String() {
					committed = e.Time
				}
			}
			time.Sleep(time.Millisecond)
		}
		var peers []*tnode
		for _, p := range running {
			if p.m == m {
				peers = append(peers, p)
			}
		}
		for {
			all := true
			for _, p := range peers {
				if !p.peerIDs(tt)[n.geth.ID()] {
					all = false
					break
				}
			}
			if all {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("round %d: node not peered within 60 s", i)
			}
			time.Sleep(2 * time.Millisecond)
		}
		samples = append(samples, time.Since(committed))
		// Take it out again so every round starts from the same mesh.
		n.stopAgent(b)
		n.geth.Kill()
		if err := s.reg.Registry.Remove(context.Background(), admin, n.geth.ID().String()); err != nil {
			b.Fatal(err)
		}
	}
	sort.Slice(samples, func(i, j int) bool { return samples[i] < samples[j] })
	p50 := samples[len(samples)/2]
	p99 := samples[len(samples)-1]
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.Logf("%s convergence over %d new nodes: p50 %v, p99 (max) %v, all %v", version, len(samples), p50, p99, samples)
}

// BenchmarkAgentFootprint runs `consortium agent run` as its own process
// beside one geth node and reads its RSS and its CPU time over 10 s idle.
func BenchmarkAgentFootprint(b *testing.B) {
	tt := b
	s := newSuite(tt, gethtest.V117)
	m := s.addMember("m1")
	g := gethtest.Start(tt, gethtest.Config{Version: gethtest.V117, Bootnodes: []string{m.boot.Enode()}})
	dir := b.TempDir()
	bin := filepath.Join(dir, "consortium")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/consortium").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	keyFile := filepath.Join(dir, "nodekey")
	if err := os.WriteFile(keyFile, []byte(fmt.Sprintf("%x", crypto.FromECDSA(g.Key()))), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "agent", "run", "--rpc", g.IPCPath(), "--role", "tx", "--nodekey", keyFile,
		"--state-dir", filepath.Join(dir, "state"), "--registrar", s.reg.url(), "--listen", "")
	cmd.Env = append(os.Environ(), "CONSORTIUM_CREDENTIAL="+m.cred)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() }()
	time.Sleep(5 * time.Second) // registered, watching
	t0 := cpuTicks(b, cmd.Process.Pid)
	time.Sleep(10 * time.Second)
	t1 := cpuTicks(b, cmd.Process.Pid)
	rss := rssKB(b, cmd.Process.Pid)
	cpuPct := float64(t1-t0) / 100 / 10 * 100 // ticks at 100 Hz over 10 s
	b.ReportMetric(float64(rss)/1024, "rss-MB")
	b.ReportMetric(cpuPct, "idle-cpu-%")
	b.Logf("agent process: RSS %.1f MB, idle CPU %.2f%% over 10 s (lease TTL %v: one renewal every TTL/3)", float64(rss)/1024, cpuPct, testTTL)
}

func cpuTicks(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

func rssKB(b *testing.B, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return v
		}
	}
	return 0
}
