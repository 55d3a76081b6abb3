package gethtest

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/procgroup"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rpc"
)

// stopGrace is how long Stop waits after SIGTERM before it sends SIGKILL.
const stopGrace = 5 * time.Second

// Node is one running (or stopped) geth process with a fixed key, data
// directory and set of ports.
type Node struct {
	t     testing.TB
	cfg   Config
	bin   string
	label string

	key                          *ecdsa.PrivateKey
	id                           enode.ID
	ports                        ports
	dataDir, ipcDir, ipcPath     string
	logPath, configPath, keyPath string

	mu    sync.Mutex
	proc  *process    // nil when stopped
	enode string      // from admin_nodeInfo of the latest start
	node  *enode.Node // enode parsed
}

// process is one run of geth; done closes when it has been reaped.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

var nodeCounter atomic.Int64

// Start initialises (when needed) and starts a geth node, and returns once
// its RPC answers admin_nodeInfo. The node is stopped by t.Cleanup; when the
// test has failed, the tail of the node's log is printed.
func Start(t testing.TB, cfg Config) *Node {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	bin := Binary(t, cfg.Version)

	n := &Node{
		t:     t,
		cfg:   cfg,
		bin:   bin,
		label: fmt.Sprintf("geth-%s#%d", cfg.Version, nodeCounter.Add(1)),
		key:   cfg.NodeKey,
	}
	if n.key == nil {
		if n.key, err = crypto.GenerateKey(); err != nil {
			t.Fatal(err)
		}
	}
	n.id = enode.PubkeyToIDV4(&n.key.PublicKey)

	// The data directory is created before the cleanup below is
	// registered, so cleanups (last in, first out) stop geth before the
	// directory is removed.
	n.dataDir = cfg.DataDir
	if n.dataDir == "" {
		n.dataDir = t.TempDir()
	}
	// A unix socket path must fit in 108 bytes; t.TempDir() paths often
	// do not, so the socket lives in a short directory of its own.
	if n.ipcDir, err = os.MkdirTemp("", "gt"); err != nil {
		t.Fatal(err)
	}
	if len(n.ipcDir) > 90 { // a long $TMPDIR
		os.Remove(n.ipcDir)
		if n.ipcDir, err = os.MkdirTemp("/tmp", "gt"); err != nil {
			t.Fatal(err)
		}
	}
	n.ipcPath = filepath.Join(n.ipcDir, "geth.ipc")
	n.logPath = filepath.Join(n.dataDir, "gethtest.log")
	n.configPath = filepath.Join(n.dataDir, "gethtest-config.toml")
	n.keyPath = filepath.Join(n.dataDir, "gethtest-nodekey")

	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			n.dumpLog()
		}
		os.RemoveAll(n.ipcDir)
	})

	if err := crypto.SaveECDSA(n.keyPath, n.key); err != nil {
		t.Fatal(err)
	}
	if err := n.initChain(); err != nil {
		t.Fatalf("%s: %v", n.label, err)
	}

	// Ports are picked here and kept for every restart. Another process
	// can take a port between the pick and geth's bind; then geth exits
	// with "address already in use" and new ports are tried.
	const attempts = 3
	for attempt := 1; ; attempt++ {
		if err := n.pickPorts(); err != nil {
			t.Fatal(err)
		}
		err := n.launch()
		if err == nil {
			return n
		}
		if attempt < attempts && errors.Is(err, errAddrInUse) {
			t.Logf("%s: %v; retrying with other ports", n.label, err)
			continue
		}
		t.Fatalf("%s: %v (log: %s)", n.label, err, n.logPath)
	}
}

var errAddrInUse = errors.New("a port was taken by another process")

func (n *Node) pickPorts() error {
	var err error
	if n.cfg.ListenAddr != "" {
		_, port, _ := strings.Cut(n.cfg.ListenAddr, ":")
		n.ports.p2p, _ = strconv.Atoi(port)
	} else if n.ports.p2p, err = freePort(true); err != nil {
		return err
	}
	if n.ports.http, err = freePort(false); err != nil {
		return err
	}
	n.ports.auth, err = freePort(false)
	return err
}

// initChain runs `geth init` unless the data directory holds a chain.
func (n *Node) initChain() error {
	if _, err := os.Stat(filepath.Join(n.dataDir, "geth", "chaindata")); err == nil {
		return nil
	}
	genesis := filepath.Join(n.dataDir, "gethtest-genesis.json")
	if err := os.WriteFile(genesis, n.cfg.Genesis, 0o644); err != nil {
		return err
	}
	logf, err := n.openLog("init")
	if err != nil {
		return err
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, n.bin, initArgs(n.cfg, n.dataDir, genesis)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("geth init: %v", err)
	}
	return nil
}

// openLog appends a header for a new run to the node's log file.
func (n *Node) openLog(what string) (*os.File, error) {
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "==== gethtest %s: %s %s\n", time.Now().Format(time.RFC3339Nano), n.label, what)
	return f, nil
}

func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		// Its own process group, so a stop reaches geth and anything
		// it spawns, and a Ctrl-C on the test does not race our stop.
		Setpgid: true,
		// If the test binary dies without running cleanups (a panic,
		// the -timeout alarm, SIGKILL), geth dies with it.
		Pdeathsig: syscall.SIGKILL,
	}
}

// launch writes config.toml, starts geth and waits for its RPC.
func (n *Node) launch() error {
	cfg := n.cfg
	cfg.ListenAddr = "127.0.0.1:" + strconv.Itoa(n.ports.p2p)
	_, statErr := os.Stat(n.configPath)
	if !cfg.KeepConfig || statErr != nil {
		if err := os.WriteFile(n.configPath, []byte(configTOML(cfg)), 0o644); err != nil {
			return err
		}
	}
	args := gethArgs(cfg, n.ports, n.dataDir, n.configPath, n.keyPath, n.ipcPath)
	logf, err := n.openLog("start: geth " + strings.Join(args, " "))
	if err != nil {
		return err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(n.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	n.mu.Lock()
	n.proc = p
	n.mu.Unlock()

	enodeURL, err := n.waitReady(p)
	if err != nil {
		n.Kill()
		if strings.Contains(tail(n.logPath, 60), "address already in use") {
			return fmt.Errorf("%w: %v", errAddrInUse, err)
		}
		return err
	}
	node, err := enode.ParseV4(enodeURL)
	if err != nil {
		n.Kill()
		return fmt.Errorf("admin_nodeInfo enode %q: %v", enodeURL, err)
	}
	n.mu.Lock()
	n.enode, n.node = enodeURL, node
	n.mu.Unlock()
	return nil
}

// waitReady polls admin_nodeInfo until it answers with this node's ID over
// both IPC and HTTP, the process exits, or StartTimeout passes.
func (n *Node) waitReady(p *process) (string, error) {
	deadline := time.Now().Add(n.cfg.StartTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return "", fmt.Errorf("geth exited during start-up: %v", p.err)
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := os.Stat(n.ipcPath); err != nil {
			lastErr = err
			continue
		}
		var info struct {
			ID    string `json:"id"`
			Enode string `json:"enode"`
		}
		if err := n.call(&info, "admin_nodeInfo"); err != nil {
			lastErr = err
			continue
		}
		if info.ID != n.id.String() {
			return "", fmt.Errorf("geth runs with node ID %s, want %s (was --nodekey ignored?)", info.ID, n.id)
		}
		// geth opens the HTTP server just after the IPC socket.
		if err := n.callHTTP(&info, "admin_nodeInfo"); err != nil {
			lastErr = err
			continue
		}
		return info.Enode, nil
	}
	return "", fmt.Errorf("RPC did not answer admin_nodeInfo within %v (last error: %v)", n.cfg.StartTimeout, lastErr)
}

func (n *Node) call(result any, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.DialIPC(ctx, n.ipcPath)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.CallContext(ctx, result, method, args...)
}

func (n *Node) callHTTP(result any, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.DialContext(ctx, n.RPCURL())
	if err != nil {
		return err
	}
	defer c.Close()
	return c.CallContext(ctx, result, method, args...)
}

// Call makes one JSON-RPC call over IPC, for test set-up and checks that
// the code under test does not cover.
func (n *Node) Call(result any, method string, args ...any) error {
	if err := n.call(result, method, args...); err != nil {
		return fmt.Errorf("%s: %s: %w", n.label, method, err)
	}
	return nil
}

// Stop sends SIGTERM to the node's process group, SIGKILL after 5 s, and
// waits until geth has exited. Stopping a stopped node does nothing.
func (n *Node) Stop() { n.stop(syscall.SIGTERM) }

// Kill sends SIGKILL to the node's process group and waits until geth has
// exited: a crash, with no chance to flush anything.
func (n *Node) Kill() { n.stop(syscall.SIGKILL) }

func (n *Node) stop(sig syscall.Signal) {
	n.mu.Lock()
	p := n.proc
	n.proc = nil
	n.mu.Unlock()
	if p == nil {
		return
	}
	procgroup.Stop(p.cmd.Process.Pid, p.done, sig, stopGrace)
}

// Restart stops the node and starts it again with the same data directory,
// key and ports: everything added over admin RPC is gone afterwards, as on
// a real restart. It returns once RPC answers again. It returns an error
// rather than failing a test because it is often called from a subtest of
// the test that started the node.
func (n *Node) Restart() error {
	n.Stop()
	if err := n.launch(); err != nil {
		return fmt.Errorf("%s: restart: %w (log: %s)", n.label, err, n.logPath)
	}
	return nil
}

// RestartWithKey stops the node and starts it again with a new node key,
// written over the key file geth reads (KeyPath) first, as an operator
// rotating the key does; data directory and ports stay. ID, Key, Enode
// and Node are the new key's afterwards.
func (n *Node) RestartWithKey(key *ecdsa.PrivateKey) error {
	n.Stop()
	if err := crypto.SaveECDSA(n.keyPath, key); err != nil {
		return fmt.Errorf("%s: writing the new node key: %w", n.label, err)
	}
	n.mu.Lock()
	n.key, n.id = key, enode.PubkeyToIDV4(&key.PublicKey)
	n.mu.Unlock()
	if err := n.launch(); err != nil {
		return fmt.Errorf("%s: restart with a new key: %w (log: %s)", n.label, err, n.logPath)
	}
	return nil
}

// Running reports whether the geth process is alive.
func (n *Node) Running() bool {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid is the process (and process group) ID of the running geth, or 0.
func (n *Node) Pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc == nil {
		return 0
	}
	return n.proc.cmd.Process.Pid
}

// Enode is the node's enode URL as geth reports it
// (enode://<pubkey>@127.0.0.1:<port>).
func (n *Node) Enode() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.enode
}

// Node is Enode parsed.
func (n *Node) Node() *enode.Node {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.node
}

// ID is the node's devp2p node ID.
func (n *Node) ID() enode.ID {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.id
}

// Key is the node's devp2p private key.
func (n *Node) Key() *ecdsa.PrivateKey {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.key
}

// KeyPath is the node key file geth reads (--nodekey): the file an agent
// beside it reads too.
func (n *Node) KeyPath() string { return n.keyPath }

// RPCURL is the node's HTTP JSON-RPC endpoint.
func (n *Node) RPCURL() string { return "http://127.0.0.1:" + strconv.Itoa(n.ports.http) }

// ConfigPath is the config.toml geth reads (--config).
func (n *Node) ConfigPath() string { return n.configPath }

// ListenAddr is the devp2p listen address.
func (n *Node) ListenAddr() string { return "127.0.0.1:" + strconv.Itoa(n.ports.p2p) }

// IPCPath is the node's IPC socket.
func (n *Node) IPCPath() string { return n.ipcPath }

// P2PPort is the devp2p TCP port, also the UDP discovery port.
func (n *Node) P2PPort() int { return n.ports.p2p }

// AuthRPCPort is the Engine API port.
func (n *Node) AuthRPCPort() int { return n.ports.auth }

// DataDir is geth's data directory.
func (n *Node) DataDir() string { return n.dataDir }

// LogPath is the file that receives geth's output, across restarts.
func (n *Node) LogPath() string { return n.logPath }

// Version is the geth release the node runs.
func (n *Node) Version() string { return n.cfg.Version }

// dumpLog prints the tail of the node's log through the test's log.
func (n *Node) dumpLog() {
	n.t.Logf("---- %s log (%s), last lines:\n%s---- end of %s log", n.label, n.logPath, tail(n.logPath, 150), n.label)
}

// tail returns the last lines of a file (at most 64 KiB).
func tail(path string, lines int) string {
	const limit = 64 << 10
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)\n", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(0, st.Size()-limit)
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return err.Error()
	}
	all := strings.SplitAfter(string(buf), "\n")
	if len(all) > lines+1 {
		all = all[len(all)-lines-1:]
	}
	return strings.Join(all, "")
}
