package gethtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

type peerInfo struct {
	ID      string `json:"id"`
	Network struct {
		Inbound bool `json:"inbound"`
		Trusted bool `json:"trusted"`
		Static  bool `json:"static"`
	} `json:"network"`
}

// waitPeer polls admin_peers on n until id is connected and returns it.
func waitPeer(t *testing.T, n *Node, id enode.ID, within time.Duration) peerInfo {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		var peers []peerInfo
		if err := n.Call(&peers, "admin_peers"); err != nil {
			t.Fatal(err)
		}
		for _, p := range peers {
			if p.ID == id.String() {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not connected to %s within %v", n.label, id.TerminalString(), within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// TestColdStartPeers starts two nodes, the second with the first in
// config.toml as static and trusted, and checks they connect with those
// flags: the cold-start path the agent writes.
func TestColdStartPeers(t *testing.T) {
	for _, version := range []string{V117, V113} {
		t.Run(version, func(t *testing.T) {
			b := Start(t, Config{Version: version})
			key, _ := crypto.GenerateKey()
			a := Start(t, Config{
				Version:      version,
				NodeKey:      key,
				StaticNodes:  []string{b.Enode()},
				TrustedNodes: []string{b.Enode()},
			})
			ready := time.Now()
			if a.ID() != enode.PubkeyToIDV4(&key.PublicKey) {
				t.Errorf("ID %s does not come from the given key", a.ID())
			}
			want := fmt.Sprintf("enode://%x@127.0.0.1:%d", crypto.FromECDSAPub(&key.PublicKey)[1:], a.P2PPort())
			if a.Enode() != want {
				t.Errorf("Enode = %s, want %s", a.Enode(), want)
			}
			p := waitPeer(t, a, b.ID(), 30*time.Second)
			t.Logf("config.toml static peer connected %v after RPC was up", time.Since(ready).Round(time.Millisecond))
			if !p.Network.Static || !p.Network.Trusted || p.Network.Inbound {
				t.Errorf("peer flags %+v, want static, trusted, outbound", p.Network)
			}
			assertLoopbackOnly(t, a)
			if len(a.IPCPath()) > 100 {
				t.Errorf("IPC path %q is too long for a unix socket", a.IPCPath())
			}
		})
	}
}

// TestRestart checks that a restarted or crashed node comes back with the
// same identity and ports, and that it forgets peers added over RPC.
func TestRestart(t *testing.T) {
	b := Start(t, Config{})
	a := Start(t, Config{})
	enodeA, rpcA, pid := a.Enode(), a.RPCURL(), a.Pid()

	var ok bool
	if err := a.Call(&ok, "admin_addPeer", b.Enode()); err != nil || !ok {
		t.Fatalf("admin_addPeer: %v, %v", ok, err)
	}
	waitPeer(t, a, b.ID(), 30*time.Second)

	if err := a.Restart(); err != nil {
		t.Fatal(err)
	}
	if a.Enode() != enodeA || a.RPCURL() != rpcA {
		t.Errorf("after restart enode %s rpc %s, want %s %s", a.Enode(), a.RPCURL(), enodeA, rpcA)
	}
	if alive(pid) {
		t.Errorf("old geth (pid %d) still alive after Restart", pid)
	}
	if a.Pid() == pid || !a.Running() {
		t.Errorf("Restart did not start a new process (pid %d, running %v)", a.Pid(), a.Running())
	}
	// b does not dial a (it never had a as static), and a forgot b.
	time.Sleep(2 * time.Second)
	var peers []peerInfo
	if err := a.Call(&peers, "admin_peers"); err != nil {
		t.Fatal(err)
	}
	if len(peers) != 0 {
		t.Errorf("restarted node kept %d peers added over RPC", len(peers))
	}

	pid = a.Pid()
	a.Kill()
	if a.Running() || alive(pid) {
		t.Fatalf("geth (pid %d) alive after Kill", pid)
	}
	if err := a.Restart(); err != nil {
		t.Fatal(err)
	}
	if a.Enode() != enodeA {
		t.Errorf("after crash and restart enode %s, want %s", a.Enode(), enodeA)
	}
	a.Stop()
	a.Stop() // stopping twice is harmless
	if a.Running() {
		t.Error("Running after Stop")
	}
}

const helperEnv = "GETHTEST_HELPER_FAIL"

// TestHelperFailingTest is run only as a child of TestCleanupOnFailure: it
// starts a node and fails.
func TestHelperFailingTest(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper for TestCleanupOnFailure")
	}
	var pid int
	// Registered before Start, so it runs after the node's cleanup.
	t.Cleanup(func() {
		if alive(pid) {
			fmt.Printf("HELPER: geth %d ALIVE after cleanup\n", pid)
		} else {
			fmt.Printf("HELPER: geth %d GONE after cleanup\n", pid)
		}
	})
	n := Start(t, Config{})
	pid = n.Pid()
	fmt.Printf("HELPER: pid %d\n", pid)
	t.Fatal("deliberate failure")
}

// TestCleanupOnFailure runs a failing test in a child process and checks
// that its geth was stopped by the cleanup and its log was printed.
func TestCleanupOnFailure(t *testing.T) {
	Binary(t, V117)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperFailingTest$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("helper test did not fail: %v\n%s", err, out)
	}
	s := string(out)
	i := strings.Index(s, "HELPER: pid ")
	if i < 0 {
		t.Fatalf("helper printed no pid:\n%s", s)
	}
	pid, _ := strconv.Atoi(strings.Fields(s[i+len("HELPER: pid "):])[0])
	if !strings.Contains(s, fmt.Sprintf("HELPER: geth %d GONE after cleanup", pid)) {
		t.Errorf("geth was not stopped by the cleanup:\n%s", s)
	}
	if !strings.Contains(s, "log (") || !strings.Contains(s, "Starting Geth") {
		t.Errorf("the failed test did not print geth's log:\n%s", s)
	}
	if alive(pid) {
		t.Errorf("geth %d alive after the helper exited", pid)
		syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// TestCrashSafe checks that a CrashSafe node's database is made and opened
// with the hash state scheme (geth logs the scheme it opens; it refuses a
// database made with the other one, so init and run must agree), and that
// it opens again after a SIGKILL.
func TestCrashSafe(t *testing.T) {
	n := Start(t, Config{CrashSafe: true})
	n.Kill()
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	log, err := os.ReadFile(n.LogPath())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(log), "scheme=hash"); got < 3 {
		t.Errorf("geth logged scheme=hash %d times over init and two starts, want 3 or more:\n%s", got, tail(n.LogPath(), 80))
	}
	if strings.Contains(string(log), "scheme=path") {
		t.Errorf("geth used the path scheme:\n%s", tail(n.LogPath(), 80))
	}
}

// TestRestartWithKey checks that a node restarted with a new key runs it,
// keeps its ports, and that the key file holds the new key.
func TestRestartWithKey(t *testing.T) {
	n := Start(t, Config{})
	oldID, port := n.ID(), n.P2PPort()
	key, _ := crypto.GenerateKey()
	if err := n.RestartWithKey(key); err != nil {
		t.Fatal(err)
	}
	want := enode.PubkeyToIDV4(&key.PublicKey)
	if n.ID() != want || n.ID() == oldID || n.Node().ID() != want || n.P2PPort() != port {
		t.Errorf("after RestartWithKey: ID %s, enode ID %s, port %d; want %s, port %d", n.ID(), n.Node().ID(), n.P2PPort(), want, port)
	}
	onDisk, err := crypto.LoadECDSA(n.KeyPath())
	if err != nil || enode.PubkeyToIDV4(&onDisk.PublicKey) != want {
		t.Errorf("key file %s does not hold the new key (%v)", n.KeyPath(), err)
	}
}
