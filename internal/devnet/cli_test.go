//go:build linux

package devnet

import (
	"bufio"
	"bytes"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/gethtest"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// These tests run the consortium binary itself, as a person would: its
// flags, its one-line errors and its handling of Ctrl-C.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// consortiumBin builds cmd/consortium once per test binary.
func consortiumBin(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the consortium binary; skipped with -short")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build the consortium binary")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "devnet-cli-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "consortium")
		out, err := exec.Command(goTool, "build", "-o", binPath, "github.com/consortium/consortium/cmd/consortium").CombinedOutput()
		if err != nil {
			buildErr = err
			binPath = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build ./cmd/consortium: %v\n%s", buildErr, binPath)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" && buildErr == nil {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// TestBadInput: each mistake ends with one clear line, a non-zero exit, and
// nothing left running.
func TestBadInput(t *testing.T) {
	t.Parallel()
	bin := consortiumBin(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "a-file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	notConsortium := filepath.Join(tmp, "other")
	os.MkdirAll(notConsortium, 0o755)
	os.WriteFile(filepath.Join(notConsortium, "notes.txt"), nil, 0o644)
	existing := filepath.Join(tmp, "existing")
	if out, err := exec.Command(bin, "init", "--members", "a", "--out", existing).CombinedOutput(); err != nil {
		t.Fatalf("init: %v\n%s", err, out)
	}
	notGeth := filepath.Join(tmp, "geth")
	os.WriteFile(notGeth, []byte("#!/bin/sh\necho Version: 1.17.10-stable\n"), 0o755)
	oldGeth := filepath.Join(tmp, "geth-old")
	os.WriteFile(oldGeth, []byte("#!/bin/sh\necho Version: 1.13.15-stable\n"), 0o755)

	cases := []struct {
		name string
		args []string
		want string // in the one line
	}{
		{"init duplicate", []string{"init", "--members", "a,b,a", "--out", filepath.Join(tmp, "x1")}, "member named twice"},
		{"init bad name", []string{"init", "--members", "a,B c", "--out", filepath.Join(tmp, "x2")}, "bad member name"},
		{"init empty name", []string{"init", "--members", "a,,b", "--out", filepath.Join(tmp, "x3")}, "bad member name"},
		{"init no members", []string{"init", "--out", filepath.Join(tmp, "x4")}, "--members is required"},
		{"init unwritable", []string{"init", "--members", "a", "--out", filepath.Join(file, "sub")}, "cannot write the output"},
		{"init existing", []string{"init", "--members", "a", "--out", existing}, "--force"},
		{"init bad prefund", []string{"init", "--members", "a", "--out", filepath.Join(tmp, "x5"), "--prefund", "0x12"}, "not an address"},
		{"devnet duplicate", []string{"devnet", "--members", "a,a", "--dir", filepath.Join(tmp, "d1")}, "member named twice"},
		{"devnet bad name", []string{"devnet", "--members", "a,Zed", "--dir", filepath.Join(tmp, "d2")}, "bad member name"},
		{"devnet unknown member", []string{"devnet", "--members", "a,b", "--nodes", "d:validator,public", "--dir", filepath.Join(tmp, "d3")}, "unknown member"},
		{"devnet bad nodes", []string{"devnet", "--nodes", "miner", "--dir", filepath.Join(tmp, "d4")}, "bad --nodes"},
		{"devnet no signer", []string{"devnet", "--nodes", "tx,public", "--dir", filepath.Join(tmp, "d5")}, "without a validator"},
		{"devnet unwritable dir", []string{"devnet", "--dir", filepath.Join(file, "sub"), "--geth", notGeth}, "cannot write the output"},
		{"devnet not a consortium", []string{"devnet", "--dir", notConsortium}, "holds no consortium.json"},
		{"devnet other members", []string{"devnet", "--dir", existing, "--members", "a,b"}, "different consortium"},
		{"devnet bad consensus", []string{"devnet", "--consensus", "pow", "--dir", filepath.Join(tmp, "d8")}, "bad --consensus"},
		{"devnet other consensus", []string{"devnet", "--consensus", "clique", "--dir", existing}, "holds a bft consortium, not clique"},
		{"devnet bft, two validators", []string{"devnet", "--nodes", "validator=2,public", "--dir", filepath.Join(tmp, "d10")}, "exactly one validator"},
		{"devnet clique, wrong geth", []string{"devnet", "--consensus", "clique", "--dir", filepath.Join(tmp, "d6"), "--geth", notGeth}, "geth 1.17.10"},
		{"devnet bft, wrong geth", []string{"devnet", "--dir", filepath.Join(tmp, "d9"), "--geth", oldGeth}, "bft needs v1.17.10"},
		{"devnet geth missing", []string{"devnet", "--dir", filepath.Join(tmp, "d7"), "--geth", filepath.Join(tmp, "nope")}, "not a usable geth"},
		{"add-member, nothing running", []string{"devnet", "add-member", "--dir", existing, "d"}, "no devnet is running"},
	}
	if geth := gethtest.Binary(t, gethtest.V113); geth != "" {
		tcp, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer tcp.Close()
		udp, err := net.ListenPacket("udp", "127.0.0.1:24000")
		if err != nil {
			t.Fatal(err)
		}
		defer udp.Close()
		cases = append(cases,
			struct {
				name string
				args []string
				want string
			}{"registrar port taken", []string{"devnet", "--consensus", "clique", "--dir", filepath.Join(tmp, "p1"), "--geth", geth, "--registrar-listen", tcp.Addr().String()}, "port is in use"},
			struct {
				name string
				args []string
				want string
			}{"node port taken", []string{"devnet", "--consensus", "clique", "--dir", filepath.Join(tmp, "p2"), "--geth", geth, "--registrar-listen", "127.0.0.1:0", "--base-port", "24000"}, "UDP 127.0.0.1:24000, discovery of a/bootnode-1"},
		)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, tc.args...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if err == nil {
				t.Fatalf("succeeded; stdout:\n%s", stdout.String())
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "consortium: ") || !strings.Contains(last, tc.want) {
				t.Errorf("last stderr line %q; want \"consortium: ...%s...\"", last, tc.want)
			}
			// One line of error: a usage error may print the usage
			// before it, nothing else may.
			if len(lines) > 1 && !strings.Contains(stderr.String(), "usage") {
				t.Errorf("more than one line on stderr:\n%s", stderr.String())
			}
		})
	}
}

// TestInterrupt runs `consortium devnet` with one member, waits for blocks,
// sends SIGINT as a terminal's Ctrl-C does (to the foreground process group)
// and checks that no process is left; then runs it again on the same
// directory, which must reuse the chain.
func TestInterrupt(t *testing.T) {
	t.Parallel()
	bin := consortiumBin(t)
	for _, tc := range []struct {
		mode    Consensus
		geth    string
		port    string
		made    string // the verb of a block line
		rpcPort string
	}{
		{Clique, gethtest.V113, "23000", "sealed", "23501"},
		// One validator is a whole CometBFT chain. Its ports (29000 to
		// 31000) stay clear of the other tests' (below 29000).
		{BFT, gethtest.V117, "29000", "proposed", "29501"},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			t.Parallel()
			interrupt(t, bin, tc.mode, gethtest.Binary(t, tc.geth), tc.port, tc.made, tc.rpcPort)
		})
	}
}

func interrupt(t *testing.T, bin string, mode Consensus, geth, port, made, rpcPort string) {
	dir := filepath.Join(t.TempDir(), "net")
	args := []string{"devnet", "--consensus", string(mode), "--members", "solo", "--nodes", "bootnode,validator,tx", "--period", "1",
		"--dir", dir, "--geth", geth, "--base-port", port, "--registrar-listen", "127.0.0.1:0"}

	run := func(t *testing.T, wantLines ...string) string {
		cmd := exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
		var out syncBuffer
		lines := make(chan string, 1000)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				out.Write([]byte(sc.Text() + "\n"))
				lines <- sc.Text()
			}
			close(lines)
		}()
		// In any order: a lone BFT validator makes blocks before its tx
		// node is up, so its first block can come before the mesh.
		deadline := time.After(90 * time.Second)
		pending := map[string]*regexp.Regexp{}
		for _, want := range wantLines {
			pending[want] = regexp.MustCompile(want)
		}
		for len(pending) > 0 {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("devnet exited before %q:\n%s\nstderr:\n%s", slices.Sorted(maps.Keys(pending)), out.String(), stderr.String())
				}
				for want, re := range pending {
					if re.MatchString(l) {
						delete(pending, want)
					}
				}
			case <-deadline:
				t.Fatalf("no line matching %q:\n%s", slices.Sorted(maps.Keys(pending)), out.String())
			}
		}
		st, err := ReadState(dir)
		if err != nil || st.PID != cmd.Process.Pid {
			t.Fatalf("devnet.json: pid %d, want %d (%v)", st.PID, cmd.Process.Pid, err)
		}
		var pids []int
		plain := 0
		for _, n := range st.Nodes {
			if n.PID != 0 && n.Name == plainName {
				plain++ // the plain-geth node, when one runs (root) and has started yet
			}
			if n.PID != 0 {
				pids = append(pids, n.PID)
			}
			// Every node's address, geth's included (issue 24: it was "").
			if en, err := enode.ParseV4(n.Enode); err != nil || en.ID().String() != n.ID {
				t.Errorf("devnet.json: %s/%s has enode %q (%v), want its own (ID %s)", n.Member, n.Name, n.Enode, err, n.ID)
			}
		}
		if len(pids)-plain != 2 {
			t.Fatalf("devnet.json lists %d geth processes, want 2: %+v", len(pids), st.Nodes)
		}
		// A terminal's Ctrl-C: SIGINT to the foreground process group.
		// geth runs in groups of its own, so only the devnet gets it.
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			for range lines {
			}
			done <- cmd.Wait()
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("devnet exited with %v after SIGINT; stderr:\n%s", err, stderr.String())
			}
		case <-time.After(45 * time.Second):
			t.Fatalf("devnet still running 45 s after SIGINT:\n%s", out.String())
		}
		for _, pid := range pids {
			if alive(pid) {
				t.Errorf("geth %d (or its process group) survived SIGINT", pid)
			}
		}
		if !strings.Contains(out.String(), "stopped 2 geth nodes, 1 bootnodes and the registrar") {
			t.Errorf("no stop line:\n%s", out.String())
		}
		if st, _ := ReadState(dir); st.PID != 0 {
			t.Errorf("devnet.json still names pid %d after the stop", st.PID)
		}
		return out.String()
	}

	first := run(t, `created a consortium`, `mesh complete: 2 geth nodes, 1 links`, `first block `+made+` by solo`)
	if !strings.Contains(first, "registered solo/validator-1") || !strings.Contains(first, "rpc http://127.0.0.1:"+rpcPort) {
		t.Errorf("first run's output lacks registrations or URLs:\n%s", first)
	}
	second := run(t, `reusing the consortium`, `chain +at block \d+`, `first block `+made+` by solo`)
	m := regexp.MustCompile(`chain +at block (\d+)`).FindStringSubmatch(second)
	b := regexp.MustCompile(`block (\d+) +` + made + ` by solo`).FindStringSubmatch(second)
	if m == nil || b == nil {
		t.Fatalf("second run:\n%s", second)
	}
	at, _ := strconv.Atoi(m[1])
	next, _ := strconv.Atoi(b[1])
	if at < 1 || next != at+1 {
		t.Errorf("second run found the chain at %d and made %d next; want the first run's chain continued", at, next)
	}
}
