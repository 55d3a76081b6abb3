package consensus

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/ethereum/go-ethereum/beacon/engine"
)

// Node is one consensus node: CometBFT in-process plus the app driving one
// geth. A Node runs once: Start, then Stop; to restart, make a new Node
// with the same Config (the state is in Home and in geth).
type Node struct {
	cfg      Config
	log      *slog.Logger
	cmtCfg   *cmtcfg.Config
	nodeKey  *p2p.NodeKey
	id       string
	pv       *privval.FilePV
	hasKey   bool
	eng      Engine
	app      *app
	metrics  *metrics
	stopApp  context.CancelFunc
	peerWake chan struct{}

	mu      sync.Mutex
	cmt     *node.Node
	keeper  *peerKeeper
	stopBg  context.CancelFunc
	bg      sync.WaitGroup
	started bool
	stopped bool
}

// New checks the configuration and loads the keys. It touches nothing on
// the network: geth is first called in Start.
func New(cfg Config) (*Node, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cc := cfg.cometConfig()
	if _, err := os.Stat(cc.GenesisFile()); err != nil {
		return nil, fmt.Errorf("%w: CometBFT genesis: %v", ErrConfig, err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.Home, "data"), 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	nodeKey, err := p2p.LoadNodeKey(cc.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("%w: node key: %v", ErrConfig, err)
	}
	pv, hasKey, err := loadPrivValidator(cc)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, fmt.Errorf("%w: metrics: %v", ErrConfig, err)
	}
	g, err := newGov(cc.GenesisFile(), filepath.Join(cfg.Home, "data"))
	if err != nil {
		return nil, err
	}
	if g.damaged != nil {
		cfg.Logger.Error("consensus: damaged governance journal set aside", "err", g.damaged)
	}
	eng, err := DialEngine(context.Background(), cfg.EngineURL, cfg.JWTSecret)
	if err != nil {
		return nil, err
	}
	if cfg.wrapEngine != nil {
		eng = cfg.wrapEngine(eng)
	}
	n := &Node{
		cfg: cfg, log: cfg.Logger, cmtCfg: cc, nodeKey: nodeKey, id: string(nodeKey.ID()),
		pv: pv, hasKey: hasKey, eng: eng, metrics: m, peerWake: make(chan struct{}, 1),
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stopApp = cancel
	n.app = newApp(ctx, eng, g, cfg.FeeRecipient, cfg.Logger, m)
	set, err := parsePeers(cfg.Peers, n.id)
	if err != nil {
		eng.Close()
		return nil, err
	}
	n.app.peers.Store(set)
	return n, nil
}

// loadPrivValidator reads the validator key (and its last-sign state, made
// when missing). CometBFT's own loader exits the process on a bad file, so
// the files are checked here first. Without a key file the node is a full
// node; it gets a throwaway key that no validator set contains, since
// CometBFT wants one either way.
func loadPrivValidator(cc *cmtcfg.Config) (*privval.FilePV, bool, error) {
	keyFile, stateFile := cc.PrivValidatorKeyFile(), cc.PrivValidatorStateFile()
	b, err := os.ReadFile(keyFile)
	if os.IsNotExist(err) {
		return privval.NewFilePV(ed25519.GenPrivKey(), "", ""), false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: validator key: %v", ErrConfig, err)
	}
	var key privval.FilePVKey
	if err := cmtjson.Unmarshal(b, &key); err != nil || key.PrivKey == nil {
		return nil, false, fmt.Errorf("%w: validator key %s: %v", ErrConfig, keyFile, err)
	}
	if s, err := os.ReadFile(stateFile); err == nil {
		var st privval.FilePVLastSignState
		if err := cmtjson.Unmarshal(s, &st); err != nil {
			return nil, false, fmt.Errorf("%w: validator state %s: %v", ErrConfig, stateFile, err)
		}
		return privval.LoadFilePV(keyFile, stateFile), true, nil
	} else if !os.IsNotExist(err) {
		return nil, false, fmt.Errorf("%w: validator state: %v", ErrConfig, err)
	}
	pv := privval.LoadFilePVEmptyState(keyFile, stateFile)
	if err := saveSignState(pv); err != nil {
		return nil, false, fmt.Errorf("%w: validator state %s: %v", ErrConfig, stateFile, err)
	}
	return pv, true, nil
}

// saveSignState writes a fresh last-sign state; CometBFT's Save panics on
// an I/O error, which is turned into an error here.
func saveSignState(pv *privval.FilePV) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%v", r)
		}
	}()
	pv.LastSignState.Save()
	return nil
}

// ID is the CometBFT node ID (40 hex characters), the "id" of the
// "id@host:port" peers give to SetPeers.
func (n *Node) ID() string { return n.id }

// Start waits until geth's Engine API answers (or ctx ends), points geth's
// fork choice at its own head (a fresh geth drops gossiped transactions
// until told so), and starts CometBFT. CometBFT's handshake asks the app
// for geth's head and replays every block geth lacks before consensus
// starts, so Start can take a while after a crash.
func (n *Node) Start(ctx context.Context) error {
	// n.mu is not held while waiting for geth and replaying blocks, so
	// Status and SetPeers answer meanwhile; a Stop during Start makes
	// Start stop what it built.
	n.mu.Lock()
	if n.started || n.stopped {
		n.mu.Unlock()
		return fmt.Errorf("consensus: node already started or stopped (a Node runs once)")
	}
	n.started = true
	n.mu.Unlock()
	started := false
	defer func() {
		if !started {
			n.mu.Lock()
			if n.stopped { // Stop left the engine to us
				n.eng.Close()
			}
			n.mu.Unlock()
		}
	}()

	// ctx bounds the whole start, the handshake's replay included: when it
	// ends first, the app gives up its retries and Start fails.
	startDone := make(chan struct{})
	defer close(startDone)
	go func() {
		select {
		case <-ctx.Done():
			n.stopApp()
		case <-startDone:
		}
	}()

	if err := n.waitEngine(ctx); err != nil {
		return err
	}
	logger := slogCometLogger{n.log.With("component", "cometbft")}
	cmt, err := node.NewNode(ctx, n.cmtCfg, n.pv, n.nodeKey,
		proxy.NewConnSyncLocalClientCreator(n.app),
		node.DefaultGenesisDocProviderFunc(n.cmtCfg),
		dbProvider(n.log),
		// Prometheus is off in cmtCfg, so these are CometBFT's no-op
		// metrics: its Prometheus ones register globally (see metrics).
		node.DefaultMetricsProvider(n.cmtCfg.Instrumentation), logger)
	if err != nil {
		return fmt.Errorf("consensus: CometBFT node: %w", err)
	}
	if err := cmt.Start(); err != nil {
		return fmt.Errorf("consensus: CometBFT start: %w", err)
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	n.cmt = cmt
	bg, cancel := context.WithCancel(context.Background())
	n.stopBg = cancel
	n.keeper = &peerKeeper{n: n, sw: cmt.Switch(), missingSince: map[string]time.Time{},
		nextDial: map[string]time.Time{}, backoff: map[string]time.Duration{}, dialing: map[string]bool{}}
	n.bg.Add(2)
	go n.keepPeers(bg)
	go n.watchRounds(bg, cmt.EventBus())
	started = true
	if n.stopped || n.app.ctx.Err() != nil { // Stop ran, or ctx ended, while CometBFT was starting
		n.stopped = true
		_ = n.stopLocked()
		return fmt.Errorf("consensus: stopped while starting (%v)", ctx.Err())
	}
	n.log.Info("consensus node started", "id", n.id, "validator", n.hasKey, "listen", n.cfg.P2PListen)
	return nil
}

// waitEngine polls geth until it answers, then sets its fork choice to its
// head (head = safe = finalized: every block it has is final).
func (n *Node) waitEngine(ctx context.Context) error {
	logged := time.Time{}
	for {
		h, err := n.eng.Head(ctx)
		if err == nil {
			hash := h.Hash()
			_, err = n.eng.ForkchoiceUpdated(ctx, engine.ForkchoiceStateV1{HeadBlockHash: hash, SafeBlockHash: hash, FinalizedBlockHash: hash}, nil)
			if err == nil {
				return nil
			}
		}
		if time.Since(logged) > 5*time.Second {
			n.log.Info("consensus: waiting for geth's engine API", "url", n.cfg.EngineURL, "err", err)
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: geth did not answer at %s: %v", ErrEngine, n.cfg.EngineURL, ctx.Err())
		case <-n.app.ctx.Done():
			return fmt.Errorf("consensus: stopped while waiting for geth")
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Stop stops CometBFT and the app. A FinalizeBlock waiting for geth gives
// up (the next start replays the block). Stopping twice does nothing.
func (n *Node) Stop() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return nil
	}
	n.stopped = true
	n.stopApp()
	if n.cmt == nil {
		// Not started, or Start is still waiting for geth or replaying:
		// the cancelled app makes it finish, and it stops what it built.
		if !n.started {
			n.eng.Close()
		}
		return nil
	}
	return n.stopLocked()
}

// stopLocked stops CometBFT and the node's goroutines; n.mu is held.
func (n *Node) stopLocked() error {
	var err error
	n.stopBg()
	if e := n.cmt.Stop(); e != nil {
		err = fmt.Errorf("consensus: stopping CometBFT: %w", e)
	}
	n.cmt.Wait()
	n.bg.Wait()
	n.keeper.wg.Wait()
	n.eng.Close()
	return err
}

// SetPeers makes addrs ("id@host:port") the exact CometBFT peer set: peers
// outside it are disconnected and refused at the handshake from now on,
// missing ones are dialled and redialled until they connect. It may be
// called before Start (the set then replaces Config.Peers) and at any time
// while running.
func (n *Node) SetPeers(addrs []string) error {
	set, err := parsePeers(addrs, n.id)
	if err != nil {
		return err
	}
	n.app.peers.Store(set)
	select {
	case n.peerWake <- struct{}{}:
	default:
	}
	return nil
}

// Status is a snapshot of the node's view of the chain.
func (n *Node) Status() Status {
	s := n.app.status.get()
	s.IsValidator = n.hasKey && (len(s.Signers)+len(s.Absent) == 0 || contains(s.Signers, s.Absent, n.validatorAddress()))
	if n.hasKey {
		s.ValidatorAddress = n.validatorAddress()
	}
	n.mu.Lock()
	if n.cmt != nil && !n.stopped {
		s.Peers = n.cmt.Switch().Peers().Size()
	}
	n.mu.Unlock()
	return s
}

func (n *Node) validatorAddress() string {
	return fmt.Sprintf("%X", n.pv.GetAddress())
}

func contains(a, b []string, x string) bool {
	for _, l := range [][]string{a, b} {
		for _, s := range l {
			if s == x {
				return true
			}
		}
	}
	return false
}

func (n *Node) keepPeers(ctx context.Context) {
	defer n.bg.Done()
	t := time.NewTicker(peerCheckInterval)
	defer t.Stop()
	for {
		n.keeper.reconcile(time.Now())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.peerWake:
			n.keeper.resetBackoff()
		}
	}
}

// watchRounds follows CometBFT's NewRound events for Status (round and
// proposer). A subscription dropped for being slow is renewed.
func (n *Node) watchRounds(ctx context.Context, bus *cmttypes.EventBus) {
	defer n.bg.Done()
	for ctx.Err() == nil {
		sub, err := bus.Subscribe(ctx, "consortium-status", cmttypes.EventQueryNewRound, 64)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
				continue
			}
		}
		for done := false; !done; {
			select {
			case <-ctx.Done():
				_ = bus.UnsubscribeAll(context.Background(), "consortium-status")
				return
			case <-sub.Canceled():
				_ = bus.UnsubscribeAll(context.Background(), "consortium-status")
				done = true
			case msg := <-sub.Out():
				if ev, ok := msg.Data().(cmttypes.EventDataNewRound); ok {
					n.app.status.newRound(ev.Height, ev.Round, ev.Proposer.Address, n.metrics)
				}
			}
		}
	}
}
