// Package registry is the consortium's directory: members and their
// credentials, and signed, leased node records. It answers "which peers should
// this node have" under the policy in docs/api.md and tells waiting agents the
// moment an answer changes.
//
// All live state is in memory, read under an RWMutex; every change is written
// through the Store before it is acknowledged, except lease renewals, which
// are written behind in batches (a renewal lost to a crash is harmless: on
// start-up every lease gets a fresh TTL, see Open).
//
// Several registries may share one store (etcd) when it implements
// store.Watcher: each then applies the others' writes to its memory as they
// are committed (shared.go), so any replica answers any agent.
package registry

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consortium/consortium/internal/noderecord"
	"github.com/consortium/consortium/internal/store"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Config tunes a Registry. Zero values mean the defaults given per field.
type Config struct {
	// TTL is the lease of a node record. Default 30 s.
	TTL time.Duration
	// LegacyTTL is the lease of an enode posted on the seed's open POST /.
	// Default 3 min, as the seed had.
	LegacyTTL time.Duration
	// FlushInterval is how often renewals are written behind. Default 1 s.
	FlushInterval time.Duration
	// RestartGrace: records whose lease ran out while the registrar was
	// down (not before) get a fresh TTL at start-up, since their agents
	// could not renew, if the registrar was down for less than this.
	// Default 24 h.
	RestartGrace time.Duration
	// Retention is how long a record whose lease ran out is kept (listed,
	// counted by the dashboard's health) before it is deleted, with a
	// "purged" event. Default 24 h; negative keeps lapsed records forever.
	// Records removed by their member or the administrator are not
	// affected (an administrator's removal keeps the node's seq).
	Retention time.Duration
	// AllowLoopbackEndpoints lets a public record carry a loopback address,
	// for a test network on one host (the devnet). Default false: other
	// members' nodes would dial their own host (noderecord.CheckPublic).
	AllowLoopbackEndpoints bool
	// Events is the size of the recent-events ring. Default 1000.
	Events int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.TTL <= 0 {
		c.TTL = 30 * time.Second
	}
	if c.LegacyTTL <= 0 {
		c.LegacyTTL = 3 * time.Minute
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.RestartGrace <= 0 {
		c.RestartGrace = 24 * time.Hour
	}
	if c.Retention == 0 {
		c.Retention = 24 * time.Hour
	}
	if c.Events <= 0 {
		c.Events = 1000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

type member struct {
	store.Member
}

type node struct {
	id         enode.ID
	idHex      string
	member     string
	role       noderecord.Role
	rec        *recInfo // the signed record, as answers need it
	pub        *recInfo // the public record, public role only
	enode      string   // private endpoint
	pubEnode   string   // public endpoint, public role only
	registered time.Time
	updated    time.Time
	expires    time.Time
	status     Status
	lapsed     bool // expiry already announced
	// hidden: removed by the administrator. Still bound to its member
	// (and its seq kept), listed to nobody; its member may register it
	// again with a record whose seq is not below the last.
	hidden bool
	// pubSeq is the highest seq of any public record the node has had.
	pubSeq uint64
}

// recInfo is what the registry keeps of a verified record: its canonical
// text, seq, IP and consensus address, not the decoded record (an
// enode.Node with its entries and public key cost some 1.5 KB per node,
// issue 19). Records are verified once, when they arrive or are loaded.
type recInfo struct {
	Seq uint64
	ENR string // canonical text form, "enr:..."
	IP  net.IP
	cmt string // the CometBFT address, "" without a "cmt" entry
}

func slimRecord(r *noderecord.Record) *recInfo {
	if r == nil {
		return nil
	}
	return &recInfo{Seq: r.Seq, ENR: r.ENR, IP: r.IP, cmt: r.ConsensusAddr()}
}

// ConsensusAddr is the record's CometBFT address ("" for none).
func (r *recInfo) ConsensusAddr() string { return r.cmt }

func (n *node) live(now time.Time) bool { return !n.lapsed && n.expires.After(now) }

// Registry is safe for concurrent use.
type Registry struct {
	cfg   Config
	store store.Store
	log   *slog.Logger

	writeMu sync.Mutex // serialises writers so store order equals memory order

	// Registrations waiting for a batch, and whether one is running
	// (group commit, nodes.go).
	regMu    sync.Mutex
	regQueue []*regJob
	regBusy  bool

	mu        sync.RWMutex
	adminHash string
	members   map[string]*member
	nodes     map[enode.ID]*node
	legacy    map[string]map[string]time.Time // network -> enode -> expires
	index     uint64
	changed   chan struct{} // closed and replaced on every index bump
	events    *ring

	// groups are the peer groups at index, built lazily by the first
	// reader that needs them (under mu for reading and groupsMu) and
	// dropped by bump (under mu for writing); see currentGroups.
	groups   atomic.Pointer[groups]
	groupsMu sync.Mutex

	// past holds the last few answers of each group, for deltas (delta.go).
	pastMu sync.Mutex
	past   map[answerKey][]*pastAnswer

	dirtyMu sync.Mutex
	dirty   map[string]store.Renewal

	// watcher is the store as a store.Watcher when it is shared, else nil.
	watcher store.Watcher
	// echoes are this replica's writes still to come back through the
	// watch, per key, oldest first; guarded by writeMu (see echo.go).
	echoes map[string][]string

	stats Stats

	// claims summarises the nodes' statuses for checkClaims (claimindex.go).
	claims claimIndex

	// Shared stores only: while the store has no quorum, renewals taken by
	// other replicas cannot reach this one, so expiry pauses (holdReap) and
	// resumes a little after the store answers again (reapAfter, unix ns).
	storeDown atomic.Bool
	reapAfter atomic.Int64

	// chainGoverned: a BFT chain decides the members (chain.go).
	chainGoverned atomic.Bool
}

// Open loads the state from st and returns a registry over it. Call Run to
// start lease expiry and the write-behind of renewals.
func Open(ctx context.Context, st store.Store, cfg Config) (*Registry, error) {
	cfg = cfg.withDefaults()
	s, err := st.Load(ctx)
	if err != nil {
		return nil, err
	}
	now := cfg.Now()
	r := &Registry{
		cfg: cfg, store: st, log: cfg.Logger,
		adminHash: s.AdminHash,
		members:   map[string]*member{},
		nodes:     map[enode.ID]*node{},
		legacy:    map[string]map[string]time.Time{},
		index:     uint64(now.UnixMilli()),
		changed:   make(chan struct{}),
		events:    newRing(cfg.Events),
		dirty:     map[string]store.Renewal{},
		echoes:    map[string][]string{},
		past:      map[answerKey][]*pastAnswer{},
	}
	r.watcher, _ = st.(store.Watcher)
	for _, m := range s.Members {
		r.members[m.Name] = &member{Member: m}
	}
	// The restart grace is for agents that could not renew while the
	// registrar was down. With a shared store other replicas may have been
	// up: a live lease in the state says so, and then the state is current.
	grace := r.watcher == nil || !anyLive(s.Nodes, now)
	down := downSince(s, cfg.TTL)
	if now.Sub(down) >= cfg.RestartGrace {
		grace = false
	}
	for _, sn := range s.Nodes {
		n, err := nodeFromStore(sn)
		if err != nil {
			// A row that no longer verifies is never served.
			r.log.Warn("skipping stored node record that does not verify", "node", sn.ID, "err", err)
			continue
		}
		if n.pub != nil {
			if err := noderecord.CheckPublic(n.pub.IP, cfg.AllowLoopbackEndpoints); err != nil {
				// Accepted under another setting: kept (the binding and
				// the seq stay) but not served, and never renewed; its
				// agent's registration is refused until it names an
				// endpoint other members can dial.
				r.log.Warn("stored public record has an endpoint this registrar refuses; the node stays out until it registers another", "node", sn.ID, "err", err)
				n.lapsed = true
				r.nodes[n.id] = n
				continue
			}
		}
		// A lease that ended before the registrar went down stays over:
		// its agent had stopped renewing while it could.
		if grace && !n.expires.IsZero() && n.expires.After(down) && n.expires.Before(now.Add(cfg.TTL)) {
			n.expires = now.Add(cfg.TTL)
			if r.watcher != nil {
				// Share the fresh lease, so replicas starting after this
				// one do not see these nodes lapsed.
				r.dirty[n.idHex] = store.Renewal{ID: n.idHex, Expires: n.expires}
			}
		}
		n.lapsed = !n.expires.After(now)
		r.nodes[n.id] = n
	}
	for _, l := range s.Legacy {
		if l.Expires.After(now) {
			r.legacyPut(l.Network, l.Enode, l.Expires)
		}
	}
	return r, nil
}

func nodeFromStore(sn store.Node) (*node, error) {
	p, err := noderecord.Verify(sn.Role, sn.ENR, sn.PublicENR)
	if err != nil {
		return nil, err
	}
	if p.Node.ID.String() != sn.ID {
		return nil, fmt.Errorf("stored ID does not match record")
	}
	n := &node{
		id: p.Node.ID, idHex: sn.ID, member: sn.Member, role: p.Role, rec: slimRecord(p.Node), pub: slimRecord(p.Public),
		enode: p.Node.Enode(), registered: sn.Registered, updated: sn.Updated, expires: sn.Expires,
		hidden: sn.AdminRemoved && sn.Expires.IsZero(), pubSeq: sn.PublicSeq,
	}
	if p.Public != nil {
		n.pubEnode = p.Public.Enode()
		n.pubSeq = max(n.pubSeq, p.Public.Seq)
	}
	if len(sn.Status) > 0 {
		st, err := ParseStatus(sn.Status)
		if err == nil {
			n.status = st
		}
	}
	return n, nil
}

// downSince is when the registrar that wrote s was last up: the store's
// heartbeat (SQLite writes it every second, after the renewals taken before
// it, so a stored lease that ended before it ended while the registrar ran:
// a renewal after its end would have been refused). A store without one
// (etcd, or a database from before the heartbeat) gives an estimate: the
// latest lease start it holds, the last time an agent is known to have
// renewed or registered, exact while the TTL is unchanged.
func downSince(s *store.State, ttl time.Duration) time.Time {
	if !s.Alive.IsZero() {
		return s.Alive
	}
	var last time.Time
	for _, n := range s.Nodes {
		if !n.Expires.IsZero() {
			last = later(last, n.Expires.Add(-ttl))
		}
		last = later(last, n.Updated)
	}
	return last
}

// anyLive reports whether any stored lease is still running at now.
func anyLive(ns []store.Node, now time.Time) bool {
	for _, n := range ns {
		if n.Expires.After(now) {
			return true
		}
	}
	return false
}

// Run expires leases and writes renewals behind until ctx ends, then flushes
// the last renewals. With a shared store it also applies the changes other
// replicas commit (follow) until ctx ends.
func (r *Registry) Run(ctx context.Context) {
	if r.watcher != nil {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); r.follow(ctx) }()
		go func() { defer wg.Done(); r.watchHealth(ctx) }()
		defer wg.Wait()
	}
	flush := time.NewTicker(r.cfg.FlushInterval)
	defer flush.Stop()
	reap := time.NewTimer(0)
	defer reap.Stop()
	var purgeC <-chan time.Time
	if r.cfg.Retention > 0 {
		purge := time.NewTicker(min(r.cfg.Retention/4, time.Minute))
		defer purge.Stop()
		purgeC = purge.C
	}
	for {
		select {
		case <-ctx.Done():
			r.tick(context.Background())
			return
		case <-flush.C:
			r.tick(ctx)
		case <-reap.C:
			reap.Reset(r.Reap())
		case <-purgeC:
			r.Purge(ctx)
		}
	}
}

// tick writes the renewals taken so far and then, if they are written, the
// heartbeat (store.Heartbeat): in that order, a stored lease that ended
// before the heartbeat was not renewed before its end.
func (r *Registry) tick(ctx context.Context) {
	if !r.flush(ctx) {
		return
	}
	if hb, ok := r.store.(store.Heartbeat); ok {
		if err := hb.SetAlive(ctx, r.cfg.Now()); err != nil {
			r.log.Warn("recording the heartbeat failed", "err", err)
		}
	}
}

// watchHealth pings a shared store every second. While it fails, leases do
// not run out here: the renewals other replicas take cannot reach this one,
// and a replica that reaped them would take live nodes out of every answer
// (agents would drop working connections). When the store answers again,
// expiry waits a few flush intervals more, for the renewals held back
// meanwhile to be written and to arrive.
func (r *Registry) watchHealth(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := r.store.Ping(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		r.setStoreDown(err != nil)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// setStoreDown records the shared store's state (see watchHealth).
func (r *Registry) setStoreDown(down bool) {
	if r.watcher == nil {
		return
	}
	was := r.storeDown.Swap(down)
	switch {
	case down && !was:
		r.log.Warn("the shared store does not answer: leases will not run out on this replica until it does")
	case !down && was:
		r.reapAfter.Store(r.cfg.Now().Add(3 * r.cfg.FlushInterval).UnixNano())
		r.log.Info("the shared store answers again; lease expiry resumes shortly")
	}
}

// holdReap reports whether lease expiry is paused (shared store only).
func (r *Registry) holdReap(now time.Time) bool {
	return r.storeDown.Load() || now.UnixNano() < r.reapAfter.Load()
}

// Now is the registry's clock.
func (r *Registry) Now() time.Time { return r.cfg.Now() }

// TTL is the lease given to node records.
func (r *Registry) TTL() time.Duration { return r.cfg.TTL }

// Ready reports whether the store answers.
func (r *Registry) Ready(ctx context.Context) error { return r.store.Ping(ctx) }

// Index is the current change index.
func (r *Registry) Index() uint64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.index
}

// Changed returns a channel closed at the next change. Waiters select on it
// and never hold anything a writer needs: closing a channel cannot block.
func (r *Registry) Changed() <-chan struct{} {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.changed
}

// bump must be called with mu held for writing.
func (r *Registry) bump() {
	r.index++
	r.groups.Store(nil)
	r.claims.invalidate()
	close(r.changed)
	r.changed = make(chan struct{})
}
