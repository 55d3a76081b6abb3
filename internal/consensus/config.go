package consensus

import (
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
)

// Config describes one consensus node. Zero values mean the default named
// in each field's comment.
type Config struct {
	// Home is a standard CometBFT home directory: config/genesis.json,
	// config/node_key.json, config/priv_validator_key.json (absent: a full
	// node, not a validator) and data/ (priv_validator_state.json is created
	// there when missing). Required.
	Home string
	// Moniker names the node to its peers. Default: "consortium".
	Moniker string
	// P2PListen is CometBFT's P2P listen address. Default:
	// "tcp://0.0.0.0:26656" (CometBFT's own default).
	P2PListen string
	// ExternalAddress is the host:port advertised to peers. Default: none
	// (peers learn the address they dialled).
	ExternalAddress string
	// RPCListen is the address of CometBFT's own RPC (status, blocks,
	// commits, validators), e.g. "127.0.0.1:26657"; it serves chain data, so
	// keep it on loopback. Default: none (no RPC).
	RPCListen string
	// EngineURL is geth's authenticated RPC endpoint (--authrpc.*),
	// e.g. "http://127.0.0.1:8551". Required.
	EngineURL string
	// JWTSecret is geth's 32-byte JWT secret (see LoadJWTSecret). Required.
	JWTSecret []byte
	// FeeRecipient is the coinbase of the blocks this node proposes: the
	// member's address. Default: the zero address (fees are burnt).
	FeeRecipient common.Address
	// BlockTime is the target interval between blocks; it sets CometBFT's
	// timeout_commit and, scaled, its other timeouts. Default: 1 s.
	BlockTime time.Duration
	// Peers is the peer set ("id@host:port") in force until the first
	// SetPeers call: the peers dialled at start and the only ones allowed
	// in. Default: none (nobody gets in until SetPeers).
	Peers []string
	// Logger receives the node's log; CometBFT's chatty per-block Info
	// lines go out at Debug. Default: discard.
	Logger *slog.Logger
	// Registerer receives the consensus metrics (never the global
	// registry). Default: none (metrics are kept but not exported).
	Registerer prometheus.Registerer

	// wrapEngine lets an in-package test stand between the app and geth
	// (a proposer that corrupts its payloads). Default: none.
	wrapEngine func(Engine) Engine
}

func (c Config) withDefaults() (Config, error) {
	if c.Home == "" {
		return c, fmt.Errorf("%w: Home is required", ErrConfig)
	}
	if c.EngineURL == "" {
		return c, fmt.Errorf("%w: EngineURL is required", ErrConfig)
	}
	if u, err := url.Parse(c.EngineURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return c, fmt.Errorf("%w: EngineURL %q is not an http(s) URL", ErrConfig, c.EngineURL)
	}
	if len(c.JWTSecret) != 32 {
		return c, fmt.Errorf("%w: JWTSecret is %d bytes, want 32", ErrConfig, len(c.JWTSecret))
	}
	if c.Moniker == "" {
		c.Moniker = "consortium"
	}
	if c.P2PListen == "" {
		c.P2PListen = "tcp://0.0.0.0:26656"
	}
	if c.BlockTime <= 0 {
		c.BlockTime = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c, nil
}

// cometConfig is the CometBFT configuration the node runs with. It is
// built here, not read from Home/config/config.toml: the settings below are
// what the design relies on, and an operator's file must not undo them.
func (c Config) cometConfig() *cmtcfg.Config {
	cc := cmtcfg.DefaultConfig()
	cc.SetRoot(c.Home)
	cc.Moniker = c.Moniker

	// Peering is ours: no peer exchange, no address book rules that
	// refuse loopback and private addresses (devnets, member networks),
	// and every peer checked against the set by the app (Query).
	cc.P2P.ListenAddress = c.P2PListen
	cc.P2P.ExternalAddress = c.ExternalAddress
	cc.P2P.PexReactor = false
	cc.P2P.AddrBookStrict = false
	cc.P2P.AllowDuplicateIP = true
	cc.P2P.PersistentPeers = ""
	cc.FilterPeers = true

	// Nothing else listens: no RPC unless asked for, no gRPC, no
	// Prometheus server (the caller serves Registerer), no pprof.
	cc.RPC.ListenAddress = ""
	if c.RPCListen != "" {
		cc.RPC.ListenAddress = "tcp://" + c.RPCListen
	}
	cc.GRPC.ListenAddress = ""
	cc.RPC.PprofListenAddress = ""
	cc.Instrumentation.Prometheus = false
	// The mempool carries governance transactions only (CheckTx refuses
	// the rest): Ethereum transactions travel over geth's devp2p.
	cc.Mempool.Type = cmtcfg.MempoolTypeFlood
	cc.TxIndex.Indexer = "null"

	// Timing. A height takes timeout_commit plus the round itself (the
	// proposer's payload build, gossip, two votes: about a third of a
	// second here), so timeout_commit is the target less that. A proposer
	// that is down costs timeout_propose before the next round.
	//
	// The round crosses the sentry topology: a validator's proposal and
	// votes reach another member's validator through two public nodes, so
	// each of the proposal, the prevotes and the precommits takes three
	// gossip hops. CometBFT's gossip routines sleep
	// peer_gossip_sleep_duration (default 100 ms) whenever a peer has
	// nothing new, so each hop waited up to that long and the round took
	// about 0.7 s instead of a third of a second: blocks came every 1.4 s
	// for a 1 s target. gossipSleep keeps a hop's wait short.
	bt := c.BlockTime
	cc.Consensus.PeerGossipSleepDuration = gossipSleep(bt)
	cc.Consensus.TimeoutCommit = max(bt-300*time.Millisecond, bt/2) //nolint:staticcheck // the v1.0 knob
	cc.Consensus.TimeoutPropose = max(3*bt/2, time.Second)
	cc.Consensus.TimeoutProposeDelta = bt / 2
	cc.Consensus.TimeoutPrevote = bt
	cc.Consensus.TimeoutPrevoteDelta = bt / 2
	cc.Consensus.TimeoutPrecommit = bt
	cc.Consensus.TimeoutPrecommitDelta = bt / 2
	cc.Consensus.CreateEmptyBlocks = true
	return cc
}

// gossipSleep is how long CometBFT's per-peer gossip routines sleep when a
// peer has nothing new: a fiftieth of the block time (20 ms at 1 s), at
// least 5 ms (CometBFT's own test setting), at most its 100 ms default.
func gossipSleep(bt time.Duration) time.Duration {
	return min(max(bt/50, 5*time.Millisecond), 100*time.Millisecond)
}

// slogCometLogger adapts slog to CometBFT's logger. CometBFT logs several
// Info lines per block, so they go out at Debug; its Error lines (a peer
// that went away, a refused dial) are routine in a network and go out at
// Warn.
type slogCometLogger struct{ l *slog.Logger }

func (s slogCometLogger) Debug(msg string, kv ...any) { s.l.Debug(msg, kv...) }
func (s slogCometLogger) Info(msg string, kv ...any)  { s.l.Debug(msg, kv...) }
func (s slogCometLogger) Error(msg string, kv ...any) { s.l.Warn(msg, kv...) }
func (s slogCometLogger) With(kv ...any) cmtlog.Logger {
	return slogCometLogger{s.l.With(kv...)}
}
