package devnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/bootnode"
	"github.com/consortium/consortium/internal/consensus"
	"github.com/consortium/consortium/internal/consensus/report"
	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/procgroup"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rpc"
)

// stopGrace is how long a geth gets after SIGTERM before SIGKILL.
const stopGrace = 10 * time.Second

// httpAPIs are the namespaces served over HTTP. admin and clique are there
// so a person can look at peers and vote from the command line; everything
// listens on 127.0.0.1 only.
const httpAPIs = "eth,net,web3,txpool,clique,admin,debug"

// bftHTTPAPIs are the same for geth v1.17, which has no clique API.
const bftHTTPAPIs = "eth,net,web3,txpool,admin,debug"

// nodeSpec is one node of the consortium, as consortium.json describes it,
// with the index that fixes its ports.
type nodeSpec struct {
	Member string
	consortiuminit.Node
	Index int
	// FeeRecipient (BFT) is the member's: the miner of the blocks its
	// validator proposes.
	FeeRecipient common.Address
}

// Label is how the node is named in every line: member/name.
func (s nodeSpec) Label() string { return s.Member + "/" + s.Name }

// env is what every node of a devnet shares.
type env struct {
	dir, geth, genesis, ipcDir string
	mode                       Consensus
	// blockTime is the BFT target block time.
	blockTime    time.Duration
	basePort     int
	startTimeout time.Duration
	log          *slog.Logger
	// logPath is the components' log (devnet.log), where a consensus
	// node's errors are.
	logPath string
	// validatorNames (BFT) names each validator address by its member.
	validatorNames map[string]string
	// exited is told when a geth exits without being asked to.
	exited func(n *gethNode, err error)
}

func (e *env) path(rel string) string { return filepath.Join(e.dir, filepath.FromSlash(rel)) }

func (e *env) ports(s nodeSpec) (p2p, http, auth int) {
	return e.basePort + s.Index, e.basePort + portStride + s.Index, e.basePort + 2*portStride + s.Index
}

// cmtPort is a BFT node's CometBFT P2P port.
func (e *env) cmtPort(s nodeSpec) int { return e.basePort + 3*portStride + s.Index }

// gethNode is a geth process with its agent beside it, in this process:
// `agent init` (cold-start config.toml), geth, then `agent run` on its IPC.
type gethNode struct {
	env  *env
	spec nodeSpec
	rc   *registrarclient.Client
	log  *slog.Logger

	dataDir, configPath, stateDir, ipcPath, logPath string
	p2p, http, auth, cmtPort                        int

	mu      sync.Mutex
	proc    *process
	cons    *consensus.Node // BFT: the running consensus node
	agent   context.CancelFunc
	agDone  chan struct{}
	started time.Time // of the running geth
	sealing bool      // miner_start was called on the running geth

	// resolv, for a plain-geth node (dns_node.go), is the resolv.conf
	// bind-mounted over /etc/resolv.conf in geth's own mount namespace.
	resolv string
}

type process struct {
	cmd      *exec.Cmd
	done     chan struct{}
	err      error
	stopping bool
}

func newGethNode(e *env, s nodeSpec, rc *registrarclient.Client) *gethNode {
	n := &gethNode{env: e, spec: s, rc: rc, log: e.log.With("node", s.Label())}
	base := filepath.Join(e.dir, "data", s.Member, s.Name)
	n.dataDir = filepath.Join(base, "geth-data")
	n.configPath = filepath.Join(base, "config.toml")
	n.stateDir = filepath.Join(base, "agent-state")
	n.ipcPath = filepath.Join(e.ipcDir, s.Member+"-"+s.Name+".ipc")
	n.logPath = filepath.Join(e.dir, "logs", s.Member+"-"+s.Name+".log")
	n.p2p, n.http, n.auth = e.ports(s)
	n.cmtPort = e.cmtPort(s)
	return n
}

// Enode is the node's devp2p address: its key and its 127.0.0.1 listen
// port, both fixed for the devnet's life.
func (n *gethNode) Enode() string {
	return "enode://" + n.spec.Pubkey + "@127.0.0.1:" + strconv.Itoa(n.p2p)
}

// RPCURL is the node's HTTP JSON-RPC endpoint.
func (n *gethNode) RPCURL() string { return "http://127.0.0.1:" + strconv.Itoa(n.http) }

// start runs the cold start and geth, waits for its RPC, then starts the agent.
func (n *gethNode) start(ctx context.Context) error {
	res, err := agent.Init(ctx, agent.InitConfig{
		Registrar: n.rc, KeyPath: n.env.path(n.spec.Nodekey), Role: string(n.spec.Role),
		StateDir: n.stateDir, ConfigPath: n.configPath, ListenAddr: "127.0.0.1:" + strconv.Itoa(n.p2p),
		NATIP: "127.0.0.1", Deadline: 30 * time.Second, Logger: n.log,
	})
	if err != nil {
		return fmt.Errorf("%s: agent init: %w", n.spec.Label(), err)
	}
	if err := os.MkdirAll(filepath.Dir(n.logPath), 0o755); err != nil {
		return err
	}
	if err := n.initChain(ctx); err != nil {
		return err
	}
	apis := httpAPIs
	if n.env.mode == BFT {
		apis = bftHTTPAPIs
	}
	args := append(res.Flags,
		"--datadir", n.dataDir,
		"--ipcpath", n.ipcPath,
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(n.http), "--http.api", apis,
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", strconv.Itoa(n.auth),
		"--syncmode", "full",
		// A devnet chain is tiny: small caches keep a dozen geth in
		// a few GiB.
		"--cache", "64",
		"--verbosity", "3",
	)
	if n.env.mode == BFT {
		return n.startBFT(ctx, args)
	}
	// Every node gets a keystore of its own with a relay account as its
	// etherbase (see markSynced); a signer's keystore also holds a copy of
	// its signer key, unlocked here and used only once the monitor starts
	// it sealing.
	ks := filepath.Join(filepath.Dir(n.dataDir), "keystore")
	relay, err := n.prepareKeystore(ks)
	if err != nil {
		return fmt.Errorf("%s: %w", n.spec.Label(), err)
	}
	args = append(args, "--keystore", ks, "--miner.etherbase", relay.Hex())
	if s := n.spec; n.isSigner() {
		// No --mine: see startSealing.
		args = append(args, "--unlock", s.Signer.Hex(), "--password", n.env.path(s.Password), "--allow-insecure-unlock")
	}
	if err := n.launch(ctx, args); err != nil {
		return err
	}
	if err := n.markSynced(ctx, relay); err != nil {
		return fmt.Errorf("%w (%s: marking it synced: %v; log: %s)", ErrNodeStart, n.spec.Label(), err, n.logPath)
	}
	return n.startAgent()
}

// initChain runs `geth init` unless the data directory holds a chain.
func (n *gethNode) initChain(ctx context.Context) error {
	if n.hasChain() {
		return nil
	}
	flags, err := n.initFlags()
	if err != nil {
		return err
	}
	logf, err := openLog(n.logPath, "geth init")
	if err != nil {
		return err
	}
	defer logf.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args := append(append([]string{"init", "--datadir", n.dataDir}, flags...), n.env.genesis)
	cmd := exec.CommandContext(ctx, n.env.geth, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w (%s: geth init: %v; log: %s: %s)", ErrNodeStart, n.spec.Label(), err, n.logPath, lastLogLine(n.logPath))
	}
	return nil
}

func openLog(path, what string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "==== consortium devnet %s: %s\n", time.Now().Format(time.RFC3339Nano), what)
	return f, nil
}

func (n *gethNode) launch(ctx context.Context, args []string) error {
	logf, err := openLog(n.logPath, "geth "+strings.Join(args, " "))
	if err != nil {
		return err
	}
	defer logf.Close()   // geth holds its own descriptor
	os.Remove(n.ipcPath) // a socket left by a killed geth
	cmd := exec.Command(n.env.geth, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttr()
	p := &process{cmd: cmd, done: make(chan struct{})}
	if err := startIn(cmd, n.resolv, p.done); err != nil {
		return fmt.Errorf("%w (%s: %v)", ErrNodeStart, n.spec.Label(), err)
	}
	n.mu.Lock()
	n.proc, n.started, n.sealing = p, time.Now(), false
	n.mu.Unlock()
	go func() {
		p.err = cmd.Wait()
		n.mu.Lock()
		stopping := p.stopping
		n.mu.Unlock()
		close(p.done)
		if !stopping && n.env.exited != nil {
			n.env.exited(n, p.err)
		}
	}()
	if err := n.waitReady(ctx, p); err != nil {
		n.stopGeth(syscall.SIGKILL)
		tail := lastLogLine(n.logPath)
		if strings.Contains(tail, "address already in use") {
			return fmt.Errorf("%w (%s: %s)", ErrPortTaken, n.spec.Label(), tail)
		}
		return fmt.Errorf("%w (%s: %v; log: %s: %s)", ErrNodeStart, n.spec.Label(), err, n.logPath, tail)
	}
	return nil
}

// waitReady polls admin_nodeInfo over IPC until geth answers as this node.
func (n *gethNode) waitReady(ctx context.Context, p *process) error {
	deadline := time.Now().Add(n.env.startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			return fmt.Errorf("geth exited during start-up (%v)", p.err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := os.Stat(n.ipcPath); err != nil {
			continue
		}
		var info struct{ ID string }
		if err := callIPC(ctx, n.ipcPath, &info, "admin_nodeInfo"); err != nil {
			continue
		}
		if info.ID != n.spec.ID {
			return fmt.Errorf("geth runs as node %s, not %s", info.ID, n.spec.ID)
		}
		return nil
	}
	return fmt.Errorf("RPC did not answer within %s", n.env.startTimeout)
}

func callIPC(ctx context.Context, path string, out any, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := rpc.DialIPC(ctx, path)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.CallContext(ctx, out, method, args...)
}

// startAgent runs the agent beside geth until stop.
func (n *gethNode) startAgent() error {
	key, _, err := agent.LoadOrCreateKey(n.env.path(n.spec.Nodekey))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	client, err := ethclient.Dial(ctx, ethclient.Config{Endpoint: n.ipcPath})
	if err != nil {
		cancel()
		return fmt.Errorf("%s: agent: %w", n.spec.Label(), err)
	}
	cfg := agent.Config{
		Client: client, Registrar: n.rc, Key: key, Role: string(n.spec.Role),
		StateDir: n.stateDir, ConfigPath: n.configPath, ListenAddr: "127.0.0.1:" + strconv.Itoa(n.p2p),
		Logger: n.log,
	}
	n.mu.Lock()
	if n.cons != nil {
		// The agent puts the node's CometBFT endpoint in its record (the
		// "cmt" entry) and keeps the CometBFT peers equal to the
		// registrar's answer, as it does geth's.
		cfg.Consensus = report.Node{Node: n.cons, Names: n.env.validatorNames}
		cfg.ConsensusPort = n.cmtPort
	}
	n.mu.Unlock()
	if n.spec.Role == consortiuminit.RolePublic {
		// On one machine the public endpoint is the private one.
		cfg.PublicIP = net.IPv4(127, 0, 0, 1)
	}
	a, err := agent.New(cfg)
	if err != nil {
		cancel()
		client.Close()
		return err
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer client.Close()
		if err := a.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			n.log.Error("agent stopped", "err", err)
		}
	}()
	n.mu.Lock()
	n.agent, n.agDone = cancel, done
	n.mu.Unlock()
	return nil
}

// stop stops the agent, then geth (SIGTERM, SIGKILL after stopGrace).
func (n *gethNode) stop() {
	n.mu.Lock()
	cancel, done := n.agent, n.agDone
	n.agent, n.agDone = nil, nil
	n.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	n.stopConsensus()
	n.stopGeth(syscall.SIGTERM)
}

func (n *gethNode) stopGeth(sig syscall.Signal) {
	n.mu.Lock()
	p := n.proc
	if p != nil {
		p.stopping = true
	}
	n.mu.Unlock()
	if p == nil {
		return
	}
	procgroup.Stop(p.cmd.Process.Pid, p.done, sig, stopGrace)
}

// isSigner reports whether the node runs a Clique signer.
func (n *gethNode) isSigner() bool {
	return n.spec.Role == consortiuminit.RoleValidator && n.spec.Signer != nil
}

// sealState says when the running geth started and whether it seals.
func (n *gethNode) sealState() (time.Time, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.started, n.sealing
}

// running reports whether geth is alive, and its process ID.
func (n *gethNode) running() (int, bool) {
	n.mu.Lock()
	p := n.proc
	n.mu.Unlock()
	if p == nil {
		return 0, false
	}
	select {
	case <-p.done:
		return 0, false
	default:
		return p.cmd.Process.Pid, true
	}
}

// lastLogLine is the last line of a log that says what went wrong: a
// "Fatal:" line when there is one, else the last line.
func lastLogLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for i := len(lines) - 1; i >= 0 && i >= len(lines)-40; i-- {
		if strings.Contains(lines[i], "Fatal") || strings.Contains(lines[i], "address already in use") {
			return strings.TrimSpace(lines[i])
		}
	}
	return strings.TrimSpace(lines[len(lines)-1])
}

// bootNode is a member's discovery bootnode, in this process, announced to
// the registrar the way `consortium bootnode` does it.
type bootNode struct {
	spec   nodeSpec
	b      *bootnode.Bootnode
	cancel context.CancelFunc
	done   chan struct{}
}

func startBootnode(e *env, s nodeSpec, rc *registrarclient.Client) (*bootNode, error) {
	p2p, _, _ := e.ports(s)
	log := e.log.With("node", s.Label())
	b, err := bootnode.New(bootnode.Config{
		ListenAddr: "127.0.0.1:" + strconv.Itoa(p2p), KeyFile: e.path(s.Nodekey),
		DataDir: filepath.Join(e.dir, "data", s.Member, s.Name), NoLivenessCheck: true, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("%w (%s: %v)", ErrNodeStart, s.Label(), err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := b.Start(ctx); err != nil {
		cancel()
		b.Close()
		if strings.Contains(err.Error(), "address already in use") {
			return nil, fmt.Errorf("%w (%s: UDP 127.0.0.1:%d)", ErrPortTaken, s.Label(), p2p)
		}
		return nil, fmt.Errorf("%w (%s: %v)", ErrNodeStart, s.Label(), err)
	}
	bn := &bootNode{spec: s, b: b, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(bn.done)
		agent.Announce(ctx, rc, "bootnode", b.ENR, log)
	}()
	return bn, nil
}

func (bn *bootNode) stop() {
	bn.cancel()
	<-bn.done
	bn.b.Close()
}
