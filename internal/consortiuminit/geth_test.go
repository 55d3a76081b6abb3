//go:build linux

package consortiuminit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// These tests run the real client the reference chain uses. They need no
// network: discovery is off, nothing peers, and every port is on loopback
// and chosen by the kernel.

// geth113 returns the geth v1.13.15 binary, or skips the test when it is
// absent, unless CONSORTIUM_REQUIRE_GETH is set.
func geth113(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs geth; skipped with -short")
	}
	bin := os.Getenv("GETH_113")
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache", "consortium", "geth-v1.13.15", "geth")
	}
	out, err := exec.Command(bin, "version").Output()
	if err == nil && !bytes.Contains(out, []byte("Version: 1.13.15")) {
		t.Fatalf("%s is not geth v1.13.15:\n%s", bin, out)
	}
	if err != nil {
		msg := fmt.Sprintf("geth v1.13.15 not runnable at %s (%v); build it with "+
			"`GOBIN=DIR go install -ldflags=-checklinkname=0 github.com/ethereum/go-ethereum/cmd/geth@v1.13.15` "+
			"and set GETH_113=DIR/geth", bin, err)
		if os.Getenv("CONSORTIUM_REQUIRE_GETH") != "" {
			t.Fatal(msg + " (failing: CONSORTIUM_REQUIRE_GETH is set)")
		}
		t.Skip(msg + " (set CONSORTIUM_REQUIRE_GETH=1 to fail instead of skipping)")
	}
	return bin
}

// TestGethAcceptsGenesis inits geth v1.13.15 with the genesis Run writes and
// reads the chain back from it: the signers geth parsed, the chain id, the
// funded signers, and the node ID geth derives from a generated nodekey.
func TestGethAcceptsGenesis(t *testing.T) {
	t.Parallel()
	bin := geth113(t)
	res, err := Run(Config{
		Consensus:      ConsensusClique,
		Members:        []string{"acme", "globex", "initech"},
		Out:            filepath.Join(t.TempDir(), "net"),
		NodesPerMember: Roles{Validators: 1, Public: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	node := res.Members[1].Nodes[1]
	g := startGeth(t, bin, res, "--nodekey", res.Path(node.Nodekey))

	var block struct{ ExtraData hexutil.Bytes }
	g.call(t, &block, "eth_getBlockByNumber", "0x0", false)
	signers, err := ParseExtraData(block.ExtraData)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(signers, res.Signers) {
		t.Errorf("genesis extraData in geth has signers %v, want %v", signers, res.Signers)
	}
	var cliqueSigners []common.Address
	g.call(t, &cliqueSigners, "clique_getSigners")
	if !slices.Equal(cliqueSigners, res.Signers) {
		t.Errorf("clique_getSigners = %v, want %v", cliqueSigners, res.Signers)
	}
	var chainID hexutil.Uint64
	g.call(t, &chainID, "eth_chainId")
	if uint64(chainID) != res.ChainID {
		t.Errorf("eth_chainId = %d, want %d", chainID, res.ChainID)
	}
	for _, s := range res.Signers {
		var bal hexutil.Big
		g.call(t, &bal, "eth_getBalance", s, "0x0")
		if (*big.Int)(&bal).Cmp(DefaultPrefundWei()) != 0 {
			t.Errorf("signer %s holds %s wei, want %s", s.Hex(), (*big.Int)(&bal), DefaultPrefundWei())
		}
	}
	var info struct{ ID string }
	g.call(t, &info, "admin_nodeInfo")
	if info.ID != node.ID {
		t.Errorf("geth --nodekey %s runs as node %s, manifest says %s", node.Nodekey, info.ID, node.ID)
	}
}

// TestGethSealsWithSignerAccount runs a one-member chain whose only signer is
// the validator's keystore account, unlocked with its password file exactly
// as a deployment would, and waits for it to seal blocks.
func TestGethSealsWithSignerAccount(t *testing.T) {
	t.Parallel()
	bin := geth113(t)
	res, err := Run(Config{
		Consensus:      ConsensusClique,
		Members:        []string{"acme"},
		Out:            filepath.Join(t.TempDir(), "net"),
		NodesPerMember: Roles{Validators: 1},
		Period:         1,
	})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Members[0].Nodes[0]
	signer := v.Signer.Hex()
	g := startGeth(t, bin, res,
		"--nodekey", res.Path(v.Nodekey),
		"--keystore", res.Path(v.Keystore),
		"--unlock", signer, "--password", res.Path(v.Password), "--allow-insecure-unlock",
		"--mine", "--miner.etherbase", signer)

	g.waitLog(t, regexp.MustCompile(`Successfully sealed new block.*number=2\b`), 30*time.Second)
	for _, n := range []string{"0x1", "0x2"} {
		var by common.Address
		g.call(t, &by, "clique_getSigner", n)
		if by != *v.Signer {
			t.Errorf("block %s sealed by %s, want %s", n, by.Hex(), signer)
		}
	}
}

// gethProc is one geth process.
type gethProc struct {
	url  string
	out  *lineLog
	done chan struct{} // closed when the process has exited
}

// startGeth inits a fresh datadir with res's genesis and starts geth on it
// with RPC on a loopback port; extra flags are appended.
func startGeth(t *testing.T, bin string, res *Result, extra ...string) *gethProc {
	t.Helper()
	dir := t.TempDir()
	datadir := filepath.Join(dir, "data")
	if out, err := exec.Command(bin, "init", "--datadir", datadir, res.Path(res.Genesis)).CombinedOutput(); err != nil {
		t.Fatalf("geth init refused the genesis: %v\n%s", err, out)
	}
	// --port binds every interface; only the config file keeps P2P on loopback.
	cfgFile := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgFile, []byte("[Node.P2P]\nListenAddr = \"127.0.0.1:0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{
		"--datadir", datadir, "--config", cfgFile,
		"--nodiscover", "--bootnodes", "", "--maxpeers", "0", "--nat", "none", "--ipcdisable",
		"--syncmode", "full",
		"--http", "--http.addr", "127.0.0.1", "--http.port", "0", "--http.api", "eth,admin,clique",
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", "0",
	}, extra...)
	cmd := exec.Command(bin, args...)
	// Its own group, so the cleanup stops geth and anything it started;
	// Pdeathsig, so geth dies with a test binary killed by -timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	g := &gethProc{out: newLineLog(), done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = g.out, g.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		cmd.Wait()
		close(g.done)
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(15 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-g.done
		}
		if t.Failed() || os.Getenv("CONSORTIUM_GETH_LOG") != "" {
			t.Logf("geth output:\n%s", g.out)
		}
	})
	// The kernel picks the port; geth logs it once the server listens.
	m := g.waitLog(t, regexp.MustCompile(`HTTP server started.*endpoint=(\S+).*auth=false`), 60*time.Second)
	g.url = "http://" + strings.Trim(m[1], `"`)
	return g
}

// waitLog waits for a line of geth's output to match re and returns the
// submatches.
func (g *gethProc) waitLog(t *testing.T, re *regexp.Regexp, timeout time.Duration) []string {
	t.Helper()
	deadline := time.After(timeout)
	for i := 0; ; {
		lines, changed := g.out.since(i)
		for _, l := range lines {
			if m := re.FindStringSubmatch(l); m != nil {
				return m
			}
		}
		i += len(lines)
		select {
		case <-changed:
		case <-g.done:
			if lines, _ := g.out.since(i); len(lines) > 0 {
				continue // read what geth wrote before it exited
			}
			t.Fatalf("geth exited before logging %q", re)
		case <-deadline:
			t.Fatalf("geth did not log %q within %v", re, timeout)
		}
	}
}

// call makes one JSON-RPC call and decodes its result into out.
func (g *gethProc) call(t *testing.T, out any, method string, params ...any) {
	t.Helper()
	if params == nil {
		params = []any{}
	}
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	resp, err := http.Post(g.url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	defer resp.Body.Close()
	var r struct {
		Result json.RawMessage
		Error  *struct{ Message string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("%s: %v", method, err)
	}
	if r.Error != nil {
		t.Fatalf("%s: %s", method, r.Error.Message)
	}
	if err := json.Unmarshal(r.Result, out); err != nil {
		t.Fatalf("%s: decoding %s: %v", method, r.Result, err)
	}
}

// lineLog collects a process's output line by line and wakes waiters on
// every new line, so tests wait for what geth says rather than for a timer.
type lineLog struct {
	mu      sync.Mutex
	partial []byte
	lines   []string
	changed chan struct{} // closed and replaced on every new line
}

func newLineLog() *lineLog { return &lineLog{changed: make(chan struct{})} }

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	added := false
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.lines = append(l.lines, string(l.partial[:i]))
		l.partial = l.partial[i+1:]
		added = true
	}
	if added {
		close(l.changed)
		l.changed = make(chan struct{})
	}
	return len(p), nil
}

// since returns the lines from index i on, and a channel closed when more arrive.
func (l *lineLog) since(i int) ([]string, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.lines[i:]), l.changed
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n") + "\n" + string(l.partial)
}
