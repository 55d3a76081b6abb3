package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/consensus"
	"github.com/consortium/consortium/internal/consensus/report"
	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v3"
)

// consensusFlags run the node's consensus process (CometBFT and the
// app that drives geth over the Engine API) inside the agent: one process
// beside geth keeps both peer layers equal to the registrar's answer.
type consensusFlags struct {
	home, listen, rpc, engine, jwt, fee string
	pubPort                             int
	blockTime                           time.Duration
}

func consensusFlagList(e *env) []cli.Flag {
	return []cli.Flag{
		cliflags.String("consensus-home", "", "CometBFT home directory (config/genesis.json, config/node_key.json, config/priv_validator_key.json for a validator): runs the consensus process in the agent (BFT consortia)"),
		cliflags.String("consensus-p2p", "0.0.0.0:26656", "CometBFT P2P listen address (host:port); its port is registered with the node's record"),
		cliflags.Int("consensus-public-port", 0, "a public node's CometBFT port at --public-ip (default: the --consensus-p2p port)"),
		cliflags.String("consensus-rpc", "", "CometBFT's RPC (status, blocks, commits) on this loopback host:port, e.g. 127.0.0.1:26657 (default: off)"),
		cliflags.String("engine", "http://127.0.0.1:8551", "geth's authenticated Engine API URL (--authrpc.*)", e.source("CONSORTIUM_ENGINE")),
		cliflags.String("jwt-secret", "", "geth's JWT secret file (required with --consensus-home)", e.source("CONSORTIUM_JWT_SECRET")),
		cliflags.String("fee-recipient", "", "the member's address, coinbase of the blocks this node proposes (default: none, fees burnt)"),
		cliflags.Duration("block-time", time.Second, "target time between blocks"),
	}
}

// readConsensusFlags reads consensusFlagList's values from cmd.
func readConsensusFlags(cmd *cli.Command) consensusFlags {
	return consensusFlags{
		home: cmd.String("consensus-home"), listen: cmd.String("consensus-p2p"), pubPort: cmd.Int("consensus-public-port"),
		rpc: cmd.String("consensus-rpc"), engine: cmd.String("engine"), jwt: cmd.String("jwt-secret"),
		fee: cmd.String("fee-recipient"), blockTime: cmd.Duration("block-time"),
	}
}

// consensusOpts is consensusFlags checked.
type consensusOpts struct {
	cfg     consensus.Config
	port    int
	pubPort int
}

// check validates the flags; nil without --consensus-home.
func (f consensusFlags) check(advertise net.IP) (*consensusOpts, error) {
	if f.home == "" {
		return nil, nil
	}
	if f.jwt == "" {
		return nil, fmt.Errorf("%w: --consensus-home needs --jwt-secret (geth's JWT secret file)", errUsage)
	}
	host, p, err := net.SplitHostPort(f.listen)
	port, perr := strconv.Atoi(p)
	if err != nil || perr != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("%w: --consensus-p2p %q is not host:port", errUsage, f.listen)
	}
	o := &consensusOpts{port: port, pubPort: f.pubPort}
	if o.pubPort < 0 || o.pubPort > 65535 {
		return nil, fmt.Errorf("%w: --consensus-public-port %d", errUsage, o.pubPort)
	}
	if f.rpc != "" {
		h, _, err := net.SplitHostPort(f.rpc)
		if ip := net.ParseIP(h); err != nil || ip == nil || !ip.IsLoopback() {
			// It serves blocks: chain data stays off the network.
			return nil, fmt.Errorf("%w: --consensus-rpc %q must be a loopback host:port (it serves chain data)", errUsage, f.rpc)
		}
	}
	var fee common.Address
	if f.fee != "" {
		if !common.IsHexAddress(f.fee) {
			return nil, fmt.Errorf("%w: --fee-recipient %q is not an address (0x and 40 hex digits)", errUsage, f.fee)
		}
		fee = common.HexToAddress(f.fee)
	}
	secret, err := consensus.LoadJWTSecret(f.jwt)
	if err != nil {
		return nil, err
	}
	o.cfg = consensus.Config{Home: f.home, P2PListen: "tcp://" + net.JoinHostPort(host, p), EngineURL: f.engine,
		JWTSecret: secret, FeeRecipient: fee, BlockTime: f.blockTime, RPCListen: f.rpc}
	if advertise != nil {
		o.cfg.ExternalAddress = net.JoinHostPort(advertise.String(), p)
	}
	return o, nil
}

// runningConsensus is the consensus process the agent started.
type runningConsensus struct {
	node *consensus.Node
	done chan struct{}
	err  error
	once sync.Once
}

// startConsensus makes the consensus node, hands it to the agent's config,
// and starts it in the background: Start waits for geth's Engine API and
// replays what geth lacks, while the agent registers the node's record
// (with its consensus endpoint) at once. failed is called if Start fails.
func startConsensus(ctx context.Context, o *consensusOpts, log *slog.Logger, reg prometheus.Registerer, cfg *agent.Config, failed func(error)) (*runningConsensus, error) {
	o.cfg.Logger, o.cfg.Registerer = log.With("part", "consensus"), reg
	n, err := consensus.New(o.cfg)
	if err != nil {
		return nil, err
	}
	cfg.Consensus, cfg.ConsensusPort, cfg.PublicConsensusPort = report.Node{Node: n, Names: report.GenesisNames(o.cfg.Home)}, o.port, o.pubPort
	rc := &runningConsensus{node: n, done: make(chan struct{})}
	go func() {
		defer close(rc.done)
		if err := n.Start(ctx); err != nil && !errors.Is(ctx.Err(), context.Canceled) {
			rc.err = err
			failed(err)
		}
	}()
	return rc, nil
}

// stop waits for Start to return and stops the node.
func (rc *runningConsensus) stop(log *slog.Logger) {
	rc.once.Do(func() {
		<-rc.done
		if err := rc.node.Stop(); err != nil {
			log.Warn("stopping the consensus process", "err", err)
		}
	})
}
