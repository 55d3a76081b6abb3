package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/p2p"
	"github.com/ethereum/go-ethereum/rpc"
)

// readmeBlock returns the commands of the first sh block after heading in
// README.md: continuation lines joined, comments and blank lines left out.
func readmeBlock(t *testing.T, heading string) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no heading %q", heading)
	}
	s = s[i:]
	i = strings.Index(s, "\n```sh\n")
	if i < 0 {
		t.Fatalf("README.md: no sh block after %q", heading)
	}
	s = s[i+len("\n```sh\n"):]
	s = s[:strings.Index(s, "\n```")]
	s = strings.ReplaceAll(s, "\\\n", " ")
	var cmds []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			cmds = append(cmds, l)
		}
	}
	return cmds
}

// readmeNodeExample is the README's node example, checked to be made of
// the commands TestReadmeNodeExample knows how to run, in order.
func readmeNodeExample(t *testing.T) []string {
	t.Helper()
	cmds := readmeBlock(t, "### A node with its agent")
	kinds := []string{"cd ", "consortium agent init ", "geth init ", "geth ", "consortium agent run "}
	if len(cmds) != len(kinds) {
		t.Fatalf("the README's node example has %d commands, the test knows %d:\n%s", len(cmds), len(kinds), strings.Join(cmds, "\n"))
	}
	for i, k := range kinds {
		if !strings.HasPrefix(cmds[i], k) {
			t.Fatalf("the README's node example's command %d is %q, the test expects %q...", i+1, cmds[i], k)
		}
	}
	for _, want := range []string{"--p2p-listen 10.0.0.5:30303 --nat-ip 10.0.0.5", "$(cat geth.flags)"} {
		if !strings.Contains(cmds[1]+cmds[3], want) {
			t.Fatalf("the README's node example lost %q", want)
		}
	}
	if !strings.Contains(cmds[4], "--p2p-listen 10.0.0.5:30303") || !strings.Contains(cmds[4], "--config-out config.toml") {
		t.Fatalf("the README's agent run does not keep config.toml's listen address: %s", cmds[4])
	}
	return cmds
}

// TestReadmeNodeExampleShape runs without geth: the README's node example
// is still the one TestReadmeNodeExample runs.
func TestReadmeNodeExampleShape(t *testing.T) { readmeNodeExample(t) }

// freeTCPUDP is a loopback port free for both TCP and UDP a moment ago.
func freeTCPUDP(t *testing.T) int {
	t.Helper()
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", l.Addr().String())
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free TCP+UDP port")
	return 0
}

// TestReadmeNodeExample runs the README's "A node with its agent" block as
// written, with real geth 1.17 and a real registrar: the registrar's URL,
// the node's address and the fee recipient are replaced by this machine's,
// and only flags that keep the test's ports apart are added. Then it
// restarts geth with the README's line: geth must come back on the same
// address (the agent rewrote config.toml meanwhile), the registrar must
// hold the same record (no re-registration on another interface), and the
// chain must go on.
func TestReadmeNodeExample(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real geth")
	}
	gethBin := gethtest.Binary(t, gethtest.V117)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	for name, body := range map[string]string{
		"consortium": fmt.Sprintf("#!/bin/sh\nCONSORTIUM_RUN_MAIN=1 exec %q \"$@\"\n", self),
		"geth":       fmt.Sprintf("#!/bin/sh\nexec %q \"$@\"\n", gethBin),
	} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	logs := t.TempDir()
	pathEnv := append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	initOut, err := exec.Command(filepath.Join(bin, "consortium"), "init", "--members", "acme", "--nodes", "validator", "--out", out).CombinedOutput()
	if err != nil {
		t.Fatalf("consortium init: %v\n%s", err, initOut)
	}
	fee := regexp.MustCompile(`fee recipient (0x[0-9a-fA-F]{40})`).FindSubmatch(initOut)
	if fee == nil {
		t.Fatalf("consortium init printed no fee recipient:\n%s", initOut)
	}
	regAddr := freePort(t)
	startProc(t, "registrar", "--listen", regAddr, "--data", t.TempDir(), "--seed", filepath.Join(out, "registrar", "seed.json"), "--allow-loopback-endpoints")
	regURL := "http://" + regAddr
	waitReady(t, regURL, nil)

	p2pPort, cmt, auth := freeTCPUDP(t), freeTCPUDP(t), freeTCPUDP(t)
	p2pAddr := "127.0.0.1:" + strconv.Itoa(p2pPort)
	// Each README value must be there, so the test cannot pass on a block
	// it no longer matches.
	subst := []struct{ readme, test string }{
		{"https://registrar:9898", regURL},
		{"10.0.0.5:30303", p2pAddr},
		{"10.0.0.5:26656", "127.0.0.1:" + strconv.Itoa(cmt)},
		{"10.0.0.5", "127.0.0.1"},
		{"0xACME...", string(fee[1])},
	}
	cmds := readmeNodeExample(t)
	all := strings.Join(cmds, "\n")
	for _, s := range subst {
		if !strings.Contains(all, s.readme) {
			t.Fatalf("the README's node example no longer holds %q:\n%s", s.readme, all)
		}
		for i := range cmds {
			cmds[i] = strings.ReplaceAll(cmds[i], s.readme, s.test)
		}
	}

	dir := out
	type bg struct {
		cmd *exec.Cmd
		log string
	}
	start := func(name, line string) *bg {
		t.Helper()
		logf := filepath.Join(logs, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
		f, err := os.Create(logf)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		c := exec.Command("bash", "-c", "exec "+line)
		c.Dir, c.Env, c.Stdout, c.Stderr = dir, pathEnv, f, f
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			c.Wait()
			if t.Failed() {
				b, _ := os.ReadFile(logf)
				if len(b) > 15000 {
					b = b[len(b)-15000:]
				}
				t.Logf("%s (%s):\n%s", name, line, b)
			}
		})
		return &bg{cmd: c, log: logf}
	}
	var gethLine string
	var geth, agent *bg
	for _, line := range cmds {
		switch {
		case strings.HasPrefix(line, "cd "):
			dir = filepath.Join(dir, strings.TrimSpace(line[3:]))
		case strings.HasPrefix(line, "consortium agent init "), strings.HasPrefix(line, "geth init "):
			c := exec.Command("bash", "-c", line)
			c.Dir, c.Env = dir, pathEnv
			if b, err := c.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", line, err, b)
			}
		case strings.HasPrefix(line, "geth "):
			// The Engine API's port, apart from any other geth's.
			gethLine = line + " --authrpc.port " + strconv.Itoa(auth)
			geth = start("geth", gethLine)
		case strings.HasPrefix(line, "consortium agent run "):
			agent = start("agent", line+" --engine http://127.0.0.1:"+strconv.Itoa(auth)+" --listen ''")
		default:
			t.Fatalf("the README's node example has a command this test does not know: %s", line)
		}
	}
	if geth == nil || agent == nil {
		t.Fatalf("the README's node example starts no geth or no agent:\n%s", all)
	}

	ipc := filepath.Join(dir, "data", "geth.ipc")
	dial := func() *rpc.Client {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for {
			c, err := rpc.Dial(ipc)
			if err == nil {
				var info p2p.NodeInfo
				if err = c.Call(&info, "admin_nodeInfo"); err == nil {
					return c
				}
				c.Close()
			}
			if time.Now().After(deadline) {
				t.Fatalf("geth's IPC %s: %v", ipc, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	head := func(c *rpc.Client) uint64 {
		var h hexutil.Uint64
		if c.Call(&h, "eth_blockNumber") != nil {
			return 0
		}
		return uint64(h)
	}
	waitHead := func(c *rpc.Client, n uint64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for head(c) < n {
			if time.Now().After(deadline) {
				t.Fatalf("geth at block %d after %v, want %d", head(c), within, n)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	listenAddr := func(c *rpc.Client) string {
		var info p2p.NodeInfo
		if err := c.Call(&info, "admin_nodeInfo"); err != nil {
			t.Fatal(err)
		}
		return info.ListenAddr
	}
	cred, err := os.ReadFile(filepath.Join(out, "members", "acme", "credential"))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := registrarclient.New(registrarclient.Config{URL: regURL, Credential: strings.TrimSpace(string(cred))})
	if err != nil {
		t.Fatal(err)
	}
	record := func() (host string, seq uint64) {
		t.Helper()
		ns, err := rc.Nodes(context.Background())
		if err != nil || len(ns) != 1 {
			t.Fatalf("acme's nodes: %v %+v", err, ns)
		}
		u, err := url.Parse(ns[0].Enode)
		if err != nil {
			t.Fatal(err)
		}
		return u.Host, ns[0].Seq
	}

	c := dial()
	waitHead(c, 3, 120*time.Second)
	if got := listenAddr(c); got != p2pAddr {
		t.Fatalf("geth listens on %s, want %s", got, p2pAddr)
	}
	// agent run has rewritten config.toml with the registrar's answer by
	// now; the next geth start reads it.
	deadline := time.Now().Add(30 * time.Second)
	for b, _ := os.ReadFile(agent.log); !strings.Contains(string(b), "peer set changed"); b, _ = os.ReadFile(agent.log) {
		if time.Now().After(deadline) {
			t.Fatal("the agent never took the registrar's peer set")
		}
		time.Sleep(200 * time.Millisecond)
	}
	host, seq := record()
	if host != p2pAddr {
		t.Fatalf("registered endpoint %s, want %s", host, p2pAddr)
	}
	before := head(c)
	c.Close()

	// Restart geth with the README's own line.
	syscall.Kill(-geth.cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- geth.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("geth did not stop within 60 s of SIGTERM")
	}
	restarted := time.Now()
	start("geth", gethLine)
	c = dial()
	defer c.Close()
	if got := listenAddr(c); got != p2pAddr {
		t.Fatalf("after the restart geth listens on %s, want %s (config.toml lost --p2p-listen)", got, p2pAddr)
	}
	waitHead(c, before+3, 120*time.Second)
	t.Logf("geth back past block %d %v after its restart", before+3, time.Since(restarted).Round(100*time.Millisecond))
	// geth signs its record anew at each start (a higher seq), so the
	// agent may register again; the endpoint must not move.
	deadline = time.Now().Add(30 * time.Second)
	for {
		h, s := record()
		if h != host {
			t.Fatalf("after the restart the registrar holds %s (seq %d), want %s", h, s, host)
		}
		if s > seq || time.Now().After(deadline) {
			t.Logf("registered endpoint %s, seq %d before the restart, %d after", h, seq, s)
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "config.toml"))
	if !strings.Contains(string(b), strconv.Quote(p2pAddr)) {
		t.Fatalf("config.toml lost the listen address:\n%s", b)
	}
}
