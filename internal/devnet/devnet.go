package devnet

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/common"
)

// Devnet is a running consortium on this machine. Start it, Close it.
type Devnet struct {
	cfg   Config
	dir   string
	out   *printer
	log   *slog.Logger
	start time.Time

	logFile *os.File
	lock    *os.File
	env     *env
	reg     *registrar
	mon     *monitor

	mu       sync.Mutex
	manifest consortiuminit.Manifest
	added    []consortiuminit.Member
	all      []nodeSpec // every node of the consortium; fixes the ports
	boots    []*bootNode
	nodes    []*gethNode
	rcs      map[string]*registrarclient.Client
	closed   bool
	// dns serves the members' node trees; plain are the plain-geth
	// nodes that find their peers in them (dns_node.go), started by
	// plainWG's goroutines.
	dns     *dnsServer
	plain   []*gethNode
	plainWG sync.WaitGroup

	addMu sync.Mutex // one member joins at a time
	// reused is set when Dir held a consortium already.
	reused bool
	// startupDone is set once Start has started every node.
	startupDone atomic.Bool

	// ctx ends when Close starts: work the devnet owns (a join) stops with it.
	ctx    context.Context
	cancel context.CancelFunc
}

// Node describes one node of a running devnet.
type Node struct {
	Member, Name, Role, ID string
	// RPC is the HTTP JSON-RPC URL and IPC the socket (geth nodes only).
	RPC, IPC string
	// Enode is the geth node's devp2p address (its key and 127.0.0.1
	// listen port); empty for a bootnode, whose address is its own.
	Enode   string
	Signer  *common.Address
	PID     int // geth's process (and process group) ID while it runs
	Running bool
	Log     string
}

// Label is member/name.
func (n Node) Label() string { return n.Member + "/" + n.Name }

// Start creates or reuses the consortium in cfg.Dir and starts all of it.
// It returns once every node runs; the mesh and the blocks follow and are
// reported on cfg.Out. On error everything it started is stopped again.
func Start(ctx context.Context, cfg Config) (_ *Devnet, err error) {
	cfg = cfg.withDefaults()
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	d := &Devnet{cfg: cfg, dir: dir, start: time.Now(), rcs: map[string]*registrarclient.Client{}}
	d.ctx, d.cancel = context.WithCancel(context.Background())
	d.out = &printer{w: cfg.Out, start: d.start}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()

	manifest, exists, err := readManifest(dir)
	if err != nil {
		return nil, err
	}
	var have Consensus
	if exists {
		have = consensusOf(manifest)
	}
	if cfg, err = cfg.withConsensus(have); err != nil {
		return nil, err
	}
	d.cfg = cfg
	var members []string
	var state State
	if exists {
		for _, m := range manifest.Members {
			members = append(members, m.Name)
		}
		if len(cfg.Members) > 0 && !sameSet(cfg.Members, members) {
			return nil, fmt.Errorf("%w (%s holds members %s, not %s)", ErrDirMismatch, dir, strings.Join(members, ","), strings.Join(cfg.Members, ","))
		}
		if d.lock, err = lockDir(dir); err != nil {
			return nil, err
		}
		if state, err = ReadState(dir); err != nil {
			return nil, err
		}
	} else {
		members = cfg.Members
		if len(members) == 0 {
			members = DefaultMembers(cfg.Consensus)
		}
		if err := checkMembers(members); err != nil {
			return nil, err
		}
		if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
			return nil, fmt.Errorf("%w (%s)", ErrNotConsortium, dir)
		}
		// Found out now, before a geth build of minutes.
		if err := probeWritable(dir); err != nil {
			return nil, fmt.Errorf("%w (%v)", consortiuminit.ErrUnwritable, err)
		}
	}
	if err := cfg.validate(members); err != nil {
		return nil, err
	}
	geth, err := ensureGeth(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ln, err := listen(cfg.RegistrarListen, "registrar")
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && d.reg == nil {
			ln.Close()
		}
	}()

	if !exists {
		icfg := consortiuminit.Config{
			Consensus: cfg.Consensus, Members: members, Out: dir, NodesPerMember: maxRoles(members, cfg.Nodes),
			ChainID: cfg.ChainID, Prefund: cfg.Prefund,
		}
		if cfg.Consensus == Clique {
			icfg.Period = cfg.Period
		}
		res, err := consortiuminit.Run(icfg)
		if err != nil {
			return nil, err
		}
		manifest = res.Manifest
		if d.lock, err = lockDir(dir); err != nil {
			return nil, err
		}
		d.out.printf("created a consortium in %s: chain id %d, %s, members %s", dir, manifest.ChainID, chainWords(cfg, manifest), strings.Join(members, ", "))
	} else {
		d.out.printf("reusing the consortium in %s: chain id %d, %s, members %s", dir, manifest.ChainID, chainWords(cfg, manifest), strings.Join(append(members, memberNames(state.Added)...), ", "))
	}
	d.manifest, d.added, d.reused = manifest, state.Added, exists
	all, run, err := roster(manifest, state.Added, cfg.Nodes)
	if err != nil {
		return nil, err
	}
	d.all = all

	if d.logFile, err = openDevnetLog(dir); err != nil {
		return nil, err
	}
	d.log = cfg.Logger
	if d.log == nil {
		d.log = slog.New(slog.NewTextHandler(d.logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	ipcDir, err := os.MkdirTemp("", "devnet-")
	if err != nil {
		return nil, err
	}
	d.env = &env{
		dir: dir, geth: geth, genesis: filepath.Join(dir, filepath.FromSlash(manifest.Genesis)), ipcDir: ipcDir,
		mode: cfg.Consensus, blockTime: time.Duration(cfg.Period) * time.Second, logPath: d.logFile.Name(),
		validatorNames: validatorNames(manifest),
		basePort:       cfg.BasePort, startTimeout: cfg.StartTimeout, log: d.log, exited: d.nodeExited,
	}
	if err := checkPorts(d.env, run); err != nil {
		return nil, err
	}
	d.out.printf("geth %s: %s", GethVersion(cfg.Consensus), geth)

	extra := map[string]http.Handler{joinPath: http.HandlerFunc(d.serveJoin)}
	if d.reg, err = startRegistrar(ctx, ln, filepath.Join(dir, "data", "registrar"), filepath.Join(dir, filepath.FromSlash(manifest.Seed)), cfg.TTL, d.log.With("part", "registrar"), extra); err != nil {
		return nil, err
	}
	d.out.printf("registrar %s (admin credential in %s)", d.reg.url, filepath.Join(dir, filepath.FromSlash(consortiuminit.AdminCredentialFile)))
	if d.dns, err = startDNS(d.reg.reg, dir, manifest, cfg.BasePort, d.log.With("part", "dns")); err != nil {
		// Not fatal: the devnet runs without the trees, and says so.
		d.out.printf("dns        no node trees over DNS: %v", err)
	}
	d.mon = startMonitor(d)

	if err := d.startNodes(ctx, run); err != nil {
		return nil, err
	}
	d.startupDone.Store(true)
	if err := d.saveState(); err != nil {
		return nil, err
	}
	d.printURLs()
	d.startPlainNodes(d.ctx, append(members, memberNames(state.Added)...))
	return d, nil
}

// startNodes starts the bootnodes, waits until the registrar has them (so
// the other nodes' cold-start config names them), then starts every geth
// node at once.
func (d *Devnet) startNodes(ctx context.Context, specs []nodeSpec) error {
	var boots []nodeSpec
	var geths []*gethNode
	for _, s := range specs {
		rc, err := d.client(s.Member)
		if err != nil {
			return err
		}
		if s.Role == consortiuminit.RoleBootnode {
			b, err := startBootnode(d.env, s, rc)
			if err != nil {
				return err
			}
			d.mu.Lock()
			d.boots = append(d.boots, b)
			d.mu.Unlock()
			boots = append(boots, s)
			continue
		}
		geths = append(geths, newGethNode(d.env, s, rc))
	}
	// All at once, so the monitor never takes a part for the whole.
	d.mu.Lock()
	d.nodes = append(d.nodes, geths...)
	d.mu.Unlock()
	d.warnLegacyState(geths)
	d.waitRegistered(ctx, boots, 15*time.Second)

	errs := make([]error, len(geths))
	var wg sync.WaitGroup
	for i, n := range geths {
		wg.Go(func() {
			if errs[i] = n.start(ctx); errs[i] == nil {
				d.out.printf("started    %-16s %-9s rpc %s  log %s", n.spec.Label(), n.spec.Role, n.RPCURL(), d.rel(n.logPath))
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err // the first: one line for the operator
		}
	}
	return nil
}

// waitRegistered waits until the registrar has every one of specs live.
// Not fatal: the nodes find each other through the registrar anyway; the
// wait only makes the first cold-start config complete.
func (d *Devnet) waitRegistered(ctx context.Context, specs []nodeSpec, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		missing := 0
		for _, s := range specs {
			if v, err := d.reg.reg.Node(admin, s.ID); err != nil || !v.Live {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// client is the registrar client with member's credential.
func (d *Devnet) client(member string) (*registrarclient.Client, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if rc, ok := d.rcs[member]; ok {
		return rc, nil
	}
	path := filepath.Join(d.dir, consortiuminit.MembersDir, member, "credential")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading member %s's credential: %w", member, err)
	}
	rc, err := registrarclient.New(registrarclient.Config{URL: d.reg.url, Credential: strings.TrimSpace(string(b))})
	if err != nil {
		return nil, err
	}
	d.rcs[member] = rc
	return rc, nil
}

// Close stops everything Start started, geth processes first, and waits
// until they have exited. It is safe to call more than once.
func (d *Devnet) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	nodes, boots := d.nodes, d.boots
	d.mu.Unlock()
	d.cancel()
	d.plainWG.Wait() // no plain node starts after this
	d.mu.Lock()
	plain := d.plain
	d.mu.Unlock()
	if d.mon != nil {
		d.mon.stop()
	}
	if d.cfg.Consensus == BFT {
		settleBFT(nodes)
	} else {
		settle(nodes)
	}
	var wg sync.WaitGroup
	for _, n := range append(nodes, plain...) {
		wg.Go(n.stop)
	}
	wg.Wait()
	for _, b := range boots {
		b.stop()
	}
	d.dns.stop()
	if d.reg != nil {
		d.reg.stop()
	}
	if d.lock != nil {
		if s, err := ReadState(d.dir); err == nil && s.PID == os.Getpid() {
			s.PID = 0
			for i := range s.Nodes {
				s.Nodes[i].PID = 0
			}
			writeState(d.dir, s)
		}
		d.lock.Close()
	}
	if d.env != nil {
		os.RemoveAll(d.env.ipcDir)
	}
	if len(nodes) > 0 || len(boots) > 0 {
		also := ""
		if len(plain) > 0 {
			also = fmt.Sprintf("; and %d plain geth (--discovery.dns)", len(plain))
		}
		d.out.printf("stopped %d geth nodes, %d bootnodes and the registrar%s", len(nodes), len(boots), also)
	}
	if d.logFile != nil {
		d.logFile.Close()
	}
	return nil
}

// settle stops sealing and waits (briefly) until every running node has
// the same head, so a devnet started again on this directory starts from
// one chain rather than from the forks of blocks that were in flight.
func settle(nodes []*gethNode) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var running []*gethNode
	for _, n := range nodes {
		if _, up := n.running(); up {
			running = append(running, n)
			if n.isSigner() {
				callIPC(ctx, n.ipcPath, nil, "miner_stop")
			}
		}
	}
	for ctx.Err() == nil {
		heads := map[string]bool{}
		for _, n := range running {
			var h struct {
				Hash string `json:"hash"`
			}
			if callIPC(ctx, n.ipcPath, &h, "eth_getBlockByNumber", "latest", false) == nil {
				heads[h.Hash] = true
			}
		}
		if len(heads) <= 1 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// chainWords say what chain a consortium runs, for the first line.
func chainWords(cfg Config, m consortiuminit.Manifest) string {
	if cfg.Consensus == BFT {
		return fmt.Sprintf("BFT (CometBFT, final blocks) on geth %s, %d-second blocks", GethVersion(BFT), cfg.Period)
	}
	return fmt.Sprintf("%d-second blocks", m.Period)
}

// nodeExited reports a geth that exited without being asked to.
func (d *Devnet) nodeExited(n *gethNode, err error) {
	d.out.printf("EXITED     %s: geth stopped on its own (%v); its log: %s", n.spec.Label(), err, d.rel(n.logPath))
}

// probeWritable makes dir when missing and writes a file into it.
func probeWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".probe-")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

func openDevnetLog(dir string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(filepath.Join(dir, "logs", "devnet.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
}
