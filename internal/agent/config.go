package agent

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/noderecord"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures an Agent. Zero values mean the defaults given per field.
type Config struct {
	// Client is the Ethereum client's admin RPC. Required.
	Client ethclient.Client
	// Registrar is the registrar client with the member's credential. Required.
	Registrar *registrarclient.Client
	// Key is the node key the client runs with (--nodekey). Required: the
	// registrar only accepts records signed by it.
	Key *ecdsa.PrivateKey
	// KeyFile is the file Key was read from (--nodekey). When the client
	// comes back running another node ID (its operator rotated the node
	// key), the agent reads this file again and, when it holds the
	// client's new key, takes it on without stopping: it registers the
	// new record, deletes the old one and keeps its peers and consensus
	// process (rotate.go). Empty: a client that runs another key stops
	// the agent with an error, as does a file that does not hold it.
	KeyFile string
	// Role is bootnode, validator, tx or public. Required.
	Role string
	// AdvertiseIP is the private endpoint's IP. Default: the IP the client
	// reports in admin_nodeInfo.
	AdvertiseIP net.IP
	// PublicIP and PublicPort are the public endpoint of a public node.
	// PublicPort defaults to the client's listener port.
	PublicIP   net.IP
	PublicPort int
	// StateDir keeps the last peer set. Required.
	StateDir string
	// ConfigPath, when set, is the client's cold-start config.toml, which
	// the agent rewrites whenever the peer set changes.
	ConfigPath string
	// ListenAddr is written into that config.toml as [Node.P2P] ListenAddr.
	ListenAddr string
	// WatchWait is how long one blocking query waits. Default 60 s.
	WatchWait time.Duration
	// RenewInterval overrides the renewal period. Default: a third of the
	// lease the registrar grants.
	RenewInterval time.Duration
	// ForeignGrace is how long a connection that our own client dialled
	// to a node outside the set may stay. Such a node was found through
	// the member's bootnodes: most likely a node of the member that has
	// just started and whose registration is on its way. Dropping it would
	// put it in our client's dial history, and if it had dialled us too
	// (both find each other at once) neither side could dial again for
	// ~35 s. A connection the other side opened gets no grace at all
	// (guard.go). Default 2 s.
	ForeignGrace time.Duration
	// GuardPoll is how often admin_peers is read for peers outside the
	// set that dialled us, when the client gives no peer events (geth over
	// HTTP; over IPC or WebSocket the guard acts on each connection
	// event). Default 1 s.
	GuardPoll time.Duration
	// DepartGrace is how long a peer that left the set is kept before it is
	// removed (see reconcile). Default 10 s.
	DepartGrace time.Duration
	// CallTimeout bounds each registration and renewal, DNS included, so an
	// unreachable registrar costs seconds, not a resolver's timeouts.
	// Default 4 s.
	CallTimeout time.Duration
	// DialStagger delays the dial towards a new peer whose node ID is above
	// ours. Both agents hear of each other in the same millisecond; if both
	// nodes dial, each may keep its own connection and refuse the other's
	// (geth's "already connected"), leaving none, and geth then waits ~35 s
	// to redial. The lower ID dials at once; the higher one adds its static
	// entry once the connection exists or the stagger has passed. Default 1 s.
	DialStagger time.Duration
	// RetryMin and RetryMax bound the backoff after errors (doubling, with
	// ±20 % jitter). Default 250 ms and 4 s: a registrar down for a minute
	// gets about 25 requests from each agent, and every agent renews within
	// about RetryMax of its return.
	RetryMin, RetryMax time.Duration
	// OutageReport is how often a registrar or client that stays
	// unreachable is logged again ("still unreachable"); the start and the
	// end of an outage are logged once each. Default 1 min.
	OutageReport time.Duration
	// Seal is the Clique signer's address for a validator whose client runs
	// without --mine: the agent starts sealing (miner_setEtherbase,
	// miner_start) once the node is peered and at the head (seal.go).
	// Zero: the agent never touches the miner for sealing.
	Seal common.Address
	// Relay is an account in the client's keystore that is not a signer
	// (RelayAccount): the agent starts and stops the miner with it each time
	// the client starts, which marks geth 1.13 synced (seal.go). Zero: not done.
	Relay common.Address
	// SealAnyway is how long a signer waits for the mesh before it seals
	// regardless. Default 45 s.
	SealAnyway time.Duration
	// SealCheck is how often the closed gate is looked at again (it reads the
	// registrar's node list each time). Default 2 s.
	SealCheck time.Duration
	// StallAfter is how long the node's head may stay put before the agent
	// looks for a peer of its set that reports a higher head, and
	// reconnects it (stall.go). Default: three block periods and 2 s on a
	// Clique chain (8 s at 2 s), 30 s on any other; negative: never.
	StallAfter time.Duration
	// StallCheck is how often a stuck head is read again, and the first gap
	// between two reads of the registrar's node list while it is stuck; each
	// such gap doubles, up to the stall time. Default 2 s.
	StallCheck time.Duration
	// Consensus, when set, is the node's consensus process (CometBFT,
	// internal/consensus): the records the agent signs carry its node ID
	// and ConsensusPort (the "cmt" entry), and every peer set from the
	// registrar becomes its peer set too (SetPeers with the answer's
	// consensus list), exactly as the client's peers follow the static
	// list (consensus.go). Default nil: neither is done.
	Consensus Consensus
	// ConsensusPort is the consensus process's P2P port at the private
	// endpoint's IP. Required with Consensus.
	ConsensusPort int
	// PublicConsensusPort is a public node's consensus port at its public
	// IP. Default ConsensusPort.
	PublicConsensusPort int
	// Firewall, when set, is given an nftables ruleset that lets only the
	// set's nodes (and FirewallAllow) reach the client's P2P TCP port,
	// each time that list changes (firewall.go). Default nil: the agent
	// never touches the host's firewall.
	Firewall Firewall
	// FirewallTable is the nftables table it owns. Default DefaultNFTTable.
	FirewallTable string
	// FirewallAllow are further addresses or prefixes allowed to connect
	// (a member whose outbound traffic leaves from other addresses than
	// its nodes' registered ones). Default none.
	FirewallAllow []netip.Prefix
	Logger        *slog.Logger
	// Now is the agent's clock. Default time.Now. The time rules (foreign
	// grace, departure grace, dial stagger; reconcile.Hold) read it, so a
	// test can move it instead of sleeping.
	Now func() time.Time
	// Metrics is where the agent's metrics are registered. Default: none.
	Metrics prometheus.Registerer
}

func (c Config) withDefaults() (Config, error) {
	switch {
	case c.Client == nil:
		return c, errors.New("agent: no client")
	case c.Registrar == nil:
		return c, errors.New("agent: no registrar")
	case c.Key == nil:
		return c, errors.New("agent: no node key")
	case c.StateDir == "":
		return c, errors.New("agent: no state directory")
	case c.Role == "public" && c.PublicIP == nil:
		return c, errors.New("agent: a public node needs its public IP")
	case c.Consensus != nil && (c.ConsensusPort <= 0 || c.ConsensusPort > 65535):
		return c, fmt.Errorf("agent: consensus port %d: want 1-65535", c.ConsensusPort)
	}
	if c.Consensus != nil {
		if _, err := noderecord.ParseConsensusID(c.Consensus.ID()); err != nil {
			return c, fmt.Errorf("agent: consensus node ID: %w", err)
		}
		if c.PublicConsensusPort == 0 {
			c.PublicConsensusPort = c.ConsensusPort
		}
		if c.PublicConsensusPort < 0 || c.PublicConsensusPort > 65535 {
			return c, fmt.Errorf("agent: public consensus port %d: want 1-65535", c.PublicConsensusPort)
		}
	}
	if c.WatchWait <= 0 {
		c.WatchWait = 60 * time.Second
	}
	if c.ForeignGrace <= 0 {
		c.ForeignGrace = 2 * time.Second
	}
	if c.GuardPoll <= 0 {
		c.GuardPoll = time.Second
	}
	if c.DepartGrace <= 0 {
		c.DepartGrace = 10 * time.Second
	}
	if c.CallTimeout <= 0 {
		c.CallTimeout = 4 * time.Second
	}
	if c.DialStagger <= 0 {
		c.DialStagger = time.Second
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 250 * time.Millisecond
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 4 * time.Second
	}
	if c.OutageReport <= 0 {
		c.OutageReport = time.Minute
	}
	if c.SealAnyway <= 0 {
		c.SealAnyway = 45 * time.Second
	}
	if c.SealCheck <= 0 {
		c.SealCheck = 2 * time.Second
	}
	if c.StallCheck <= 0 {
		c.StallCheck = 2 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}
