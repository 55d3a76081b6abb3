package dnstree

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store/sqlite"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// nsEnv, when set, names the network namespace the test binary was started
// in by TestGethDiscoveryDNS's parent half.
const nsEnv = "DNSTREE_TEST_NETNS"

// nsPrefix names the namespaces this test makes: nsPrefix + the test
// binary's PID.
const nsPrefix = "dnstree-test-"

// removeStaleNamespaces deletes the namespaces (and their /etc/netns
// directories) of earlier runs of this test whose process is gone: a run
// killed with SIGKILL could not remove its own.
func removeStaleNamespaces(ipPath string) {
	out, _ := exec.Command(ipPath, "netns", "list").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimPrefix(f[0], nsPrefix))
		if err != nil || syscall.Kill(pid, 0) == nil {
			continue // not one of ours, or its run is still going
		}
		exec.Command(ipPath, "netns", "del", f[0]).Run()
		os.RemoveAll(filepath.Join("/etc/netns", f[0]))
	}
}

// refreshEnv, set to a duration (say 35m), makes TestGethDiscoveryDNS go
// on: a third acme node registered after geth peered must be found by
// geth within that long. geth re-reads a tree's root every 30 minutes
// (p2p/dnsdisc's RecheckInterval, not a flag), so this is a long, opt-in
// run: DNSTREE_GETH_REFRESH=35m go test -run TestGethDiscoveryDNS -timeout 40m
const refreshEnv = "DNSTREE_GETH_REFRESH"

// refreshWait is refreshEnv's duration, 0 when unset.
func refreshWait(t *testing.T) time.Duration {
	v := os.Getenv(refreshEnv)
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("%s=%q: %v", refreshEnv, v, err)
	}
	return d
}

// TestGethDiscoveryDNS: a real geth v1.17.10 with nothing but
// --discovery.dns enrtree://KEY@acme.nodes.example (no static peers, no
// bootnodes) connects to acme's nodes, having read acme's tree through the
// system resolver, as any operator's geth would. The tree follows a real
// registry (SQLite) in which acme's geth nodes are registered with their
// own records, as the registrar's --dns-listen serves it.
//
// geth asks the resolver in /etc/resolv.conf, on port 53. So the test runs
// its second half in a network namespace of its own (only a loopback
// interface) with a mount namespace in which /etc/resolv.conf names
// 127.0.0.1: `ip netns exec` provides both, bind-mounting
// /etc/netns/<name>/resolv.conf. The DNS server, acme's geth nodes and the
// DNS-only geth all run in there; nothing reaches any address outside it.
func TestGethDiscoveryDNS(t *testing.T) {
	if os.Getenv(nsEnv) != "" {
		gethInNamespace(t)
		return
	}
	if testing.Short() {
		t.Skip("starts three geth processes")
	}
	gethtest.Binary(t, gethtest.V117) // skips without a binary
	if os.Geteuid() != 0 {
		t.Skip("needs root for a network namespace")
	}
	ipPath, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("needs iproute2's ip for a network namespace")
	}
	removeStaleNamespaces(ipPath)
	name := fmt.Sprintf("%s%d", nsPrefix, os.Getpid())
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(ipPath, args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	etc := filepath.Join("/etc/netns", name)
	removeNS := func() {
		exec.Command(ipPath, "netns", "del", name).Run()
		os.RemoveAll(etc)
	}
	if err := os.MkdirAll(etc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(removeNS)
	if err := os.WriteFile(filepath.Join(etc, "resolv.conf"), []byte("nameserver 127.0.0.1\noptions timeout:2 attempts:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("netns", "add", name)
	run("netns", "exec", name, "ip", "link", "set", "lo", "up")

	extra := refreshWait(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute+extra)
	defer cancel()
	cmd := exec.CommandContext(ctx, ipPath, "netns", "exec", name, os.Args[0],
		"-test.run=^TestGethDiscoveryDNS$", "-test.v", "-test.count=1", "-test.timeout="+(3*time.Minute+extra).String())
	cmd.Env = append(os.Environ(), nsEnv+"="+name)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if extra > 0 {
		// A long run shows its progress as it goes, not only at the end.
		cmd.Stdout = io.MultiWriter(&out, os.Stdout)
		cmd.Stderr = cmd.Stdout
	}
	// Its own process group, killed whole on timeout; and it dies with us.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	// Wait also waits for the copy of its output, which a leftover process
	// holding the pipe would keep open forever: bound it once the child ends.
	cmd.WaitDelay = stopLimit
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// A SIGTERM or SIGINT to the test binary skips every cleanup: stop the
	// child's group and remove the namespace first, then die of the signal.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	waited := make(chan struct{})
	go func() {
		select {
		case sig := <-sigs:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			removeNS()
			signal.Reset(sig)
			syscall.Kill(os.Getpid(), sig.(syscall.Signal))
		case <-waited:
		}
	}()
	err = cmd.Wait()
	signal.Stop(sigs)
	close(waited)
	if err != nil && cmd.Process != nil {
		// A failed child may have left members of its group behind (its
		// geth processes are in groups of their own and die with it).
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	t.Logf("inside namespace %s:\n%s", name, out.String())
	if err != nil {
		t.Fatalf("the test inside the namespace failed: %v", err)
	}
}

// gethInNamespace is the half that runs inside the namespace. The trees
// follow a real registry on a real SQLite file (what `consortium registrar
// --dns-listen` runs), and acme's nodes enter it as any agent registers
// them: with the signed record geth itself made.
func gethInNamespace(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wait := refreshWait(t)
	// Leases outlast the run: nothing here renews them.
	reg, err := registry.Open(ctx, st, registry.Config{Logger: quiet, TTL: time.Hour + wait})
	if err != nil {
		t.Fatal(err)
	}
	admin := registry.Principal{Admin: true}
	for _, m := range []string{"acme", "globex"} {
		if _, err := reg.AddMember(ctx, admin, m); err != nil {
			t.Fatal(err)
		}
	}
	// A globex node: another zone, never asked for.
	gk := testutil.Key(t)
	if _, _, err := reg.Register(ctx, registry.Principal{Name: "globex"}, registry.Registration{Role: "tx", ENR: testutil.ENR(t, gk, 1, "127.0.0.1", 1, 1)}); err != nil {
		t.Fatal(err)
	}
	tr := newTrees(t, NewRegistrySource(reg))
	go tr.Run(ctx)

	// acme's nodes: plain geth, knowing nobody, registered with geth's own
	// record.
	var acme []*enode.Node
	addMember := func() {
		n := gethtest.Start(t, gethtest.Config{})
		var info struct {
			ENR string `json:"enr"`
		}
		if err := n.Call(&info, "admin_nodeInfo"); err != nil {
			t.Fatal(err)
		}
		rec, err := enode.Parse(enode.ValidSchemes, info.ENR)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := reg.Register(ctx, registry.Principal{Name: "acme"}, registry.Registration{Role: "tx", ENR: info.ENR}); err != nil {
			t.Fatalf("registering acme's geth: %v", err)
		}
		acme = append(acme, rec)
		testutil.Eventually(t, 30*time.Second, fmt.Sprintf("acme's tree holding its %d registered nodes", len(acme)), func() error {
			v, err := tr.Tree("acme")
			if err != nil {
				return err
			}
			if v.Nodes != len(acme) {
				return fmt.Errorf("%d nodes", v.Nodes)
			}
			return nil
		})
	}
	addMember()
	addMember()
	pc, l, err := Listen("127.0.0.1:53")
	if err != nil {
		t.Fatalf("listening on port 53 inside the namespace: %v", err)
	}
	srv := NewServer(tr, ServerConfig{Logger: quiet})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc, l) }()
	defer func() { cancel(); testutil.Wait(t, stopLimit, "Serve to return after cancel", done) }()

	url := tr.URL("acme")
	v, _ := tr.Tree("acme")
	t.Logf("acme's tree: %s (seq %d, %d nodes)", url, v.Seq, v.Nodes)
	start := time.Now()
	g := gethtest.Start(t, gethtest.Config{ExtraArgs: []string{"--discovery.dns", url}})
	started := time.Since(start)
	took := waitPeers(t, g, ids(acme), 90*time.Second, srv)
	t.Logf("geth with only --discovery.dns peered with both of acme's nodes %v after its start (start took %v); DNS stats %+v",
		took, started, srv.Stats())

	if wait == 0 {
		return
	}
	addMember()
	v, _ = tr.Tree("acme")
	t.Logf("a third acme node registered and in the tree (seq %d); waiting up to %v for geth's next root check", v.Seq, wait)
	took = waitPeers(t, g, ids(acme), wait, srv)
	t.Logf("geth peered with the node registered later %v after it entered the tree (geth started %v before it); DNS stats %+v",
		took, time.Since(start)-took, srv.Stats())
}

// waitPeers polls g's admin_peers until they are exactly want (sorted node
// IDs), all dialled by g, and returns how long that took.
func waitPeers(t *testing.T, g *gethtest.Node, want []string, within time.Duration, srv *Server) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		var peers []struct {
			ID      string `json:"id"`
			Network struct {
				Inbound bool `json:"inbound"`
			} `json:"network"`
		}
		if err := g.Call(&peers, "admin_peers"); err != nil {
			t.Fatal(err)
		}
		var have []string
		for _, p := range peers {
			if p.Network.Inbound {
				t.Errorf("an inbound peer %s: nobody but the tree should have led to a connection", p.ID)
			}
			have = append(have, p.ID)
		}
		slices.Sort(have)
		if slices.Equal(have, want) {
			return time.Since(start)
		}
		if time.Since(start) > within {
			t.Fatalf("after %v geth's peers are %v, want acme's nodes %v; DNS stats %+v", within, have, want, srv.Stats())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
