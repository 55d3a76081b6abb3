// Package agent runs beside one Ethereum client and keeps its peers equal to
// the registrar's answer, live: it registers the node (an ENR signed with
// the node key), renews the lease with the client's status, waits on the
// registrar for changes (a blocking query, not a poll), and reconciles the
// client's peers over admin RPC. The decisions are reconcile.Plan's (a pure
// function); this package fetches its inputs and applies its actions.
//
// Liveness rules it keeps (docs/architecture.md, "consortium agent run"): a registrar outage never removes a
// peer; the last peer set is on disk and in the cold-start config, so a
// client restart peers at once; a connected peer outside the allowed set is
// disconnected, since geth cannot refuse a node ID by itself.
package agent

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/reconcile"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Agent is one node's agent. Run it once.
type Agent struct {
	cfg  Config
	log  *slog.Logger
	self atomic.Pointer[identity] // the node key and ID (rotate.go)
	m    *metrics

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
	dropped    map[enode.ID]time.Time // disconnected by the guard, when
	since      reconcile.Since        // reconcile's only: the time rules' since-times
	noCoinbase bool                   // the client has no etherbase: stop asking
	renewNow   bool                   // the registrar is back: renew at once
	restarted  bool                   // the client's event stream ended: it may have restarted
	endpoint   Endpoint
	cmtWant    []string // the consensus list of the last answer
	cmtPending bool     // cmtWant not yet given to the consensus process
	seq        uint64
	registered bool
	lease      time.Duration // the lease the registrar granted last
	retired    []enode.ID    // former IDs whose records are still to delete (rotate.go)
	health     Health

	watchCancel  context.CancelFunc // ends the watch loop's query in flight
	regOutage    outage             // the registrar's reachability
	clientOutage outage             // the client's
	// clientMu is held while the client's peers are read and changed
	// (reconcile, guard), so the guard's goroutine and the main loop never
	// act on each other's stale view.
	clientMu sync.Mutex

	fwApplied     string    // mainLoop's only: the ruleset last applied
	fwFailed      string    // mainLoop's only: the ruleset last refused
	lastRefusal   string    // mainLoop's only: the last refusal logged
	lastRefusalAt time.Time // and when

	seal   sealState  // mainLoop's only
	stall  stallState // mainLoop's only
	proofs proofState // mainLoop's only
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
		cfg: cfg, log: cfg.Logger,
		kick: make(chan struct{}, 1), watchKick: make(chan struct{}, 1), events: make(chan enode.ID, 64),
	}
	a.self.Store(newIdentity(cfg.Key))
	a.m = newMetrics(cfg.Metrics)
	a.regOutage = outage{what: "registrar", every: cfg.OutageReport, log: a.log}
	a.clientOutage = outage{what: "client", every: cfg.OutageReport, log: a.log}
	a.health.NodeID, a.health.Role = a.nodeID().String(), cfg.Role
	return a, nil
}

// now is the agent's clock (Config.Now).
func (a *Agent) now() time.Time { return a.cfg.Now() }

// ID is the node's ID (the new one once the client runs a new key).
func (a *Agent) ID() enode.ID { return a.nodeID() }

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
	} else if ok && (st.Node == "" || st.Node == a.nodeID().String()) {
		nodes, perr := parseEnodes(st.Static)
		if perr != nil {
			a.log.Warn("saved peer set", "err", perr)
		}
		a.mu.Lock()
		a.desired, a.bootnodes, a.index, a.etag, a.haveSet = nodes, st.Bootnodes, st.Index, st.ETag, true
		a.health.SetFromDisk = true
		a.mu.Unlock()
		a.setConsensusPeers(st.Consensus)
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
// and reconciliation are serialised here (the guard's disconnects excepted,
// guard.go).
func (a *Agent) mainLoop(ctx context.Context) error {
	retry := a.newRetry()      // the client not answering, a failed reconcile
	renewRetry := a.newRetry() // the registrar answering a renewal with an error
	var renewAt time.Time
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
			a.clientOutage.failed(a.now(), err)
			resetTimer(timer, retry.next())
			continue
		}
		if info.ID != a.nodeID() {
			if err := a.rotate(info.ID); err != nil {
				return err
			}
		}
		wasDown := !a.clientUp()
		a.setClientUp(true)
		if !a.clientOutage.ok(a.now()) && wasDown {
			a.log.Info("client reachable", "client", info.Name, "enode", info.Enode)
		}
		renewAt = a.leaseStep(ctx, info, renewAt, renewRetry)
		ok, recheck := a.reconcile(ctx)
		a.firewallStep(ctx, info)
		if a.cfg.Consensus != nil {
			a.consensusStep()
		}
		if m := a.meshComplete(); m != meshed {
			meshed = m
			if m && a.isRegistered() {
				// Report the new links now, not at the next renewal: other
				// members' signers wait for them before they seal (seal.go),
				// and the dashboard shows them.
				renewAt = a.now()
			}
		}
		restarted := wasDown || a.takeRestarted()
		stallAgain, stallReport := a.stallStep(ctx, info, restarted)
		if stallReport && a.isRegistered() {
			renewAt = a.now() // our head, now (stall.go)
		}
		wait := renewAt.Sub(a.now())
		for _, d := range []time.Duration{recheck, a.sealStep(ctx, restarted), stallAgain} {
			if d > 0 {
				wait = min(wait, d)
			}
		}
		if !ok {
			wait = min(wait, retry.next())
		} else {
			retry.reset()
		}
		if wait <= 0 {
			wait = a.cfg.RetryMin
		}
		resetTimer(timer, wait)
	}
}

// leaseStep registers or renews when due, and returns when the next
// renewal is due. While the registrar is down it sends nothing: the watch
// loop probes, and its first answer makes the next step renew at once.
func (a *Agent) leaseStep(ctx context.Context, info ethclient.NodeInfo, renewAt time.Time, r *retry) time.Time {
	now := a.now()
	if a.regOutage.isDown() {
		return now.Add(a.renewInterval())
	}
	if a.needsRegistration(info) {
		if err := a.register(ctx, info); err != nil {
			a.refused(now, "registration", err)
			return now.Add(r.next())
		}
		r.reset()
		a.removeRetired(ctx) // after the new record is in: peers move over
		return now.Add(a.renewInterval())
	}
	if !a.takeRenewNow() && now.Before(renewAt) {
		return renewAt
	}
	if err := a.renew(ctx); err != nil {
		a.refused(now, "renewal", err)
		return now.Add(min(r.next(), a.renewInterval()))
	}
	r.reset()
	a.removeRetired(ctx) // one left over from a registrar outage
	return now.Add(a.renewInterval())
}

// refused logs a registration or renewal the registrar answered with an
// error (an unreachable registrar is the outage's to log): once per error
// text and OutageReport, not once per attempt.
func (a *Agent) refused(now time.Time, what string, err error) {
	if registrarDown(err) {
		return
	}
	msg := what + ": " + err.Error()
	if msg == a.lastRefusal && now.Sub(a.lastRefusalAt) < a.cfg.OutageReport {
		return
	}
	a.lastRefusal, a.lastRefusalAt = msg, now
	a.log.Warn(what+" failed; keeping current peers, retrying with backoff", "err", err)
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
