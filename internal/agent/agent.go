// Package agent runs beside one Ethereum client and keeps its peers equal to
// the registrar's answer, live: it registers the node (an ENR signed with
// the node key), renews the lease with the client's status, waits on the
// registrar for changes (a blocking query, not a poll), and reconciles the
// client's peers over admin RPC. The decisions are reconcile.Plan's (a pure
// function); this package fetches its inputs and applies its actions.
//
// Liveness rules it keeps (DESIGN.md): a registrar outage never removes a
// peer; the last peer set is on disk and in the cold-start config, so a
// client restart peers at once; a connected peer outside the allowed set is
// disconnected, since geth cannot refuse a node ID by itself.
package agent

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/registry"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/p2p/enode"
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
	// ForeignGrace is how long a connected peer outside the set may stay
	// before it is disconnected. A node that has just started may dial us a
	// moment before its registration reaches us; dropping it then would
	// make geth wait ~35 s to redial. Default 2 s.
	ForeignGrace time.Duration
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
	// RetryMin and RetryMax bound the backoff after errors. Default 250 ms
	// and 2 s: after an outage the node is back in every answer within
	// about RetryMax.
	RetryMin, RetryMax time.Duration
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
	Logger     *slog.Logger
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
	}
	if c.WatchWait <= 0 {
		c.WatchWait = 60 * time.Second
	}
	if c.ForeignGrace <= 0 {
		c.ForeignGrace = 2 * time.Second
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
		c.RetryMax = 2 * time.Second
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
	return c, nil
}

// Agent is one node's agent. Run it once.
type Agent struct {
	cfg Config
	log *slog.Logger
	id  enode.ID
	m   *metrics

	kick      chan struct{} // wake the reconcile loop
	watchKick chan struct{} // end a watch backoff early
	events    chan enode.ID

	mu         sync.Mutex
	desired    []*enode.Node // last good set from the registrar (or disk)
	bootnodes  []string
	index      uint64
	etag       string
	haveSet    bool
	applied    []*enode.Node
	foreign    map[enode.ID]time.Time // connected outside the set, since
	wantSince  map[enode.ID]time.Time // in the desired set, since
	goneSince  map[enode.ID]time.Time // out of the desired set, since
	noCoinbase bool                   // the client has no etherbase: stop asking
	renewNow   bool                   // the registrar is back: renew at once
	restarted  bool                   // the client's event stream ended: it may have restarted
	endpoint   Endpoint
	seq        uint64
	registered bool
	health     Health

	seal  sealState  // mainLoop's only
	stall stallState // mainLoop's only
}

// Health is a snapshot for /healthz.
type Health struct {
	NodeID             string    `json:"node_id"`
	Role               string    `json:"role"`
	Registered         bool      `json:"registered"`
	RegistrarReachable bool      `json:"registrar_reachable"`
	ClientReachable    bool      `json:"client_reachable"`
	Desired            int       `json:"desired_peers"`
	Connected          int       `json:"connected_peers"`
	Unconnected        []string  `json:"unconnected_peers,omitempty"`
	LeaseExpires       time.Time `json:"lease_expires"`
	LastReconcile      time.Time `json:"last_reconcile"`
	SetFromDisk        bool      `json:"set_from_disk"`
}

// New validates cfg.
func New(cfg Config) (*Agent, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg: cfg, log: cfg.Logger, id: enode.PubkeyToIDV4(&cfg.Key.PublicKey),
		kick: make(chan struct{}, 1), watchKick: make(chan struct{}, 1), events: make(chan enode.ID, 64),
	}
	a.m = newMetrics(cfg.Metrics)
	a.health.NodeID, a.health.Role = a.id.String(), cfg.Role
	return a, nil
}

// ID is the node's ID.
func (a *Agent) ID() enode.ID { return a.id }

// Health returns a snapshot.
func (a *Agent) Health() Health {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.health
	h.Registered = a.registered
	return h
}

func (a *Agent) wake() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

// Run works until ctx ends. It returns an error only for a configuration
// that cannot work (a node key that is not the client's).
func (a *Agent) Run(ctx context.Context) error {
	if st, ok, err := LoadState(a.cfg.StateDir); err != nil {
		a.log.Warn("ignoring saved peer set", "err", err)
	} else if ok && (st.Node == "" || st.Node == a.id.String()) {
		nodes, perr := parseEnodes(st.Static)
		if perr != nil {
			a.log.Warn("saved peer set", "err", perr)
		}
		a.mu.Lock()
		a.desired, a.bootnodes, a.index, a.etag, a.haveSet = nodes, st.Bootnodes, st.Index, st.ETag, true
		a.health.SetFromDisk = true
		a.mu.Unlock()
		a.log.Info("using the saved peer set until the registrar answers", "peers", len(nodes), "saved", st.Saved)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.watchLoop(ctx) }()
	go func() { defer wg.Done(); a.peerEventLoop(ctx) }()
	err := a.mainLoop(ctx)
	cancel()
	wg.Wait()
	return err
}

// mainLoop owns every call that changes the client: registration, renewal
// and reconciliation are serialised here.
func (a *Agent) mainLoop(ctx context.Context) error {
	backoff := a.cfg.RetryMin
	renewAt := time.Time{}
	meshed := false // every peer of the set was connected at the last reconcile
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-a.kick:
		case p := <-a.events:
			a.onForeignPeer(ctx, p)
		}
		info, err := a.cfg.Client.NodeInfo(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.setClientUp(false)
			a.log.Warn("client not answering; retrying", "err", err, "in", backoff)
			resetTimer(timer, backoff)
			backoff = min(backoff*2, a.cfg.RetryMax)
			continue
		}
		if info.ID != a.id {
			return fmt.Errorf("the client runs node %s but the agent's key is node %s: give both the same --nodekey", info.ID, a.id)
		}
		wasDown := !a.clientUp()
		a.setClientUp(true)
		if wasDown {
			a.log.Info("client reachable", "client", info.Name, "enode", info.Enode)
		}
		now := time.Now()
		if a.needsRegistration(info) {
			if err := a.register(ctx, info); err != nil {
				a.log.Warn("registration failed; keeping current peers", "err", err)
				renewAt = time.Time{}
			} else {
				renewAt = now.Add(a.renewInterval())
			}
		} else if a.takeRenewNow() || !now.Before(renewAt) {
			if err := a.renew(ctx); err != nil {
				a.log.Warn("renewal failed; keeping current peers", "err", err)
				renewAt = now.Add(min(backoff, a.renewInterval()))
			} else {
				renewAt = now.Add(a.renewInterval())
			}
		}
		ok, recheck := a.reconcile(ctx)
		if m := a.meshComplete(); m != meshed {
			meshed = m
			if m && a.isRegistered() {
				// Report the new links now, not at the next renewal: other
				// members' signers wait for them before they seal (seal.go),
				// and the dashboard shows them.
				renewAt = time.Now()
			}
		}
		stallAgain, stallReport := a.stallStep(ctx, info)
		if stallReport && a.isRegistered() {
			renewAt = time.Now() // our head, now (stall.go)
		}
		wait := time.Until(renewAt)
		if recheck > 0 {
			wait = min(wait, recheck)
		}
		if again := a.sealStep(ctx, wasDown || a.takeRestarted()); again > 0 {
			wait = min(wait, again)
		}
		if stallAgain > 0 {
			wait = min(wait, stallAgain)
		}
		if !ok || !a.isRegistered() {
			wait = min(wait, backoff)
			backoff = min(backoff*2, a.cfg.RetryMax)
		} else {
			backoff = a.cfg.RetryMin
		}
		if wait <= 0 {
			wait = a.cfg.RetryMin
		}
		resetTimer(timer, wait)
	}
}

func resetTimer(t *time.Timer, d time.Duration) {
	if !t.Stop() {
		select {
		case <-t.C:
		default:
		}
	}
	t.Reset(d)
}

func (a *Agent) takeRenewNow() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.renewNow
	a.renewNow = false
	return r
}

// meshComplete reports whether every peer of the set was connected at the
// last reconcile (and the set is not empty).
func (a *Agent) meshComplete() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.haveSet && a.health.Desired > 0 && len(a.health.Unconnected) == 0
}

func (a *Agent) takeRestarted() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.restarted
	a.restarted = false
	return r
}

func (a *Agent) clientUp() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.health.ClientReachable
}

func (a *Agent) setClientUp(up bool) {
	a.mu.Lock()
	a.health.ClientReachable = up
	a.mu.Unlock()
	a.m.clientUp.Set(b2f(up))
}

func (a *Agent) setRegistrarUp(up bool) {
	a.mu.Lock()
	a.health.RegistrarReachable = up
	a.mu.Unlock()
	a.m.registrarUp.Set(b2f(up))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (a *Agent) isRegistered() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.registered
}

func (a *Agent) renewInterval() time.Duration {
	if a.cfg.RenewInterval > 0 {
		return a.cfg.RenewInterval
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if ttl := time.Until(a.health.LeaseExpires); ttl > 3*time.Second {
		return ttl / 3
	}
	return time.Second
}

// privateEndpoint is where this node is reached inside its member.
func (a *Agent) privateEndpoint(info ethclient.NodeInfo) Endpoint {
	ip := a.cfg.AdvertiseIP
	if ip == nil {
		ip = net.ParseIP(info.IP)
	}
	ep := Endpoint{IP: ip, TCP: info.ListenerPort, UDP: info.DiscoveryPort}
	if a.cfg.Role == "bootnode" {
		ep.TCP = 0
	}
	return ep
}

func (a *Agent) needsRegistration(info ethclient.NodeInfo) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return !a.registered || !a.endpoint.Equal(a.privateEndpoint(info))
}

func (a *Agent) register(ctx context.Context, info ethclient.NodeInfo) error {
	ep := a.privateEndpoint(info)
	if ep.IP == nil || ep.IP.IsUnspecified() {
		return fmt.Errorf("the client reports no usable IP (%q): set the advertised IP", info.IP)
	}
	a.mu.Lock()
	if a.seq == 0 || !a.endpoint.Equal(ep) {
		// A time-based seq grows across agent restarts without a file.
		a.seq = max(a.seq+1, uint64(time.Now().UnixMilli()))
	}
	seq := a.seq
	a.mu.Unlock()
	rec, err := SignRecord(a.cfg.Key, seq, ep)
	if err != nil {
		return err
	}
	req := httpapi.RegisterRequest{Role: a.cfg.Role, ENR: rec, Status: a.status(ctx, info)}
	if a.cfg.Role == "public" {
		port := a.cfg.PublicPort
		if port == 0 {
			port = info.ListenerPort
		}
		pub, err := SignRecord(a.cfg.Key, seq, Endpoint{IP: a.cfg.PublicIP, TCP: port, UDP: port})
		if err != nil {
			return err
		}
		req.PublicENR = pub
	}
	cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
	defer cancel()
	resp, err := a.cfg.Registrar.Register(cctx, req)
	a.setRegistrarUp(err == nil || !errors.Is(err, registrarclient.ErrUnreachable))
	if err != nil {
		a.m.registrations.WithLabelValues("error").Inc()
		return err
	}
	a.m.registrations.WithLabelValues("ok").Inc()
	a.mu.Lock()
	a.registered, a.endpoint = true, ep
	a.health.LeaseExpires = time.Now().Add(time.Duration(resp.TTLSeconds * float64(time.Second)))
	a.mu.Unlock()
	a.m.leaseExpires.Set(float64(a.health.LeaseExpires.Unix()))
	a.log.Info("registered", "node", a.id, "role", a.cfg.Role, "endpoint", ep.String(), "seq", seq, "ttl", resp.TTLSeconds)
	a.wakeWatch()
	return nil
}

func (a *Agent) renew(ctx context.Context) error {
	info, _ := a.cfg.Client.NodeInfo(ctx)
	st := a.status(ctx, info)
	cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
	resp, err := a.cfg.Registrar.Renew(cctx, a.id.String(), st)
	cancel()
	a.setRegistrarUp(err == nil || !errors.Is(err, registrarclient.ErrUnreachable))
	if registrarclient.IsStatus(err, 404) {
		a.m.renewals.WithLabelValues("lapsed").Inc()
		a.mu.Lock()
		a.registered = false
		a.mu.Unlock()
		a.log.Warn("lease lapsed at the registrar; registering again")
		if info.ID == a.id {
			return a.register(ctx, info)
		}
		return err
	}
	if err != nil {
		a.m.renewals.WithLabelValues("error").Inc()
		return err
	}
	a.m.renewals.WithLabelValues("ok").Inc()
	a.mu.Lock()
	a.health.LeaseExpires = resp.Expires
	a.mu.Unlock()
	a.m.leaseExpires.Set(float64(resp.Expires.Unix()))
	return nil
}

// status gathers what the agent reports with each renewal.
func (a *Agent) status(ctx context.Context, info ethclient.NodeInfo) *registry.Status {
	st := &registry.Status{Client: info.Name}
	if len(st.Client) > 200 {
		st.Client = st.Client[:200]
	}
	if h, err := a.cfg.Client.HeadBlock(ctx); err == nil {
		st.Head = h
	}
	if s, err := a.cfg.Client.Syncing(ctx); err == nil {
		st.Syncing = s
	}
	if ci, ok := a.cfg.Client.(ethclient.ChainInfo); ok {
		if s, err := ci.HeadSigner(ctx, st.Head); err == nil && len(s) == 42 {
			st.HeadSigner = s
		}
		a.mu.Lock()
		ask := !a.noCoinbase
		a.mu.Unlock()
		if ask {
			c, err := ci.Coinbase(ctx)
			if err == nil && len(c) == 42 && c != "0x0000000000000000000000000000000000000000" {
				st.Coinbase = c
			} else {
				// Not a signer: asking again each renewal only fills geth's log.
				a.mu.Lock()
				a.noCoinbase = true
				a.mu.Unlock()
			}
		}
	}
	if peers, err := a.cfg.Client.Peers(ctx); err == nil {
		st.Peers = len(peers)
		for _, p := range peers {
			if len(st.PeerIDs) < registry.MaxPeerIDs {
				st.PeerIDs = append(st.PeerIDs, p.ID.String())
			}
		}
		sort.Strings(st.PeerIDs)
	}
	return st
}
