package devnet

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/consortium/consortium/internal/registry"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
)

// pollEvery is how often the monitor looks at the registrar and the nodes.
// Polling rather than subscriptions: it survives node restarts without
// bookkeeping, and a dozen local IPC calls a tick cost nothing.
const pollEvery = 250 * time.Millisecond

// Stats are the moments an operator (and the benchmark) waits for.
type Stats struct {
	Started time.Time
	// Mesh is when every intended link between running geth nodes was
	// first up at once; zero until then.
	Mesh time.Time
	// FirstBlock is, per member, when a block sealed by its signer was first seen.
	FirstBlock map[string]time.Time
	// Head is the highest block any node has.
	Head uint64
	// Links and Expected are the intended links up now, and their number.
	Links, Expected int
	// Forks counts the heights (BFT) at which two nodes held different
	// blocks: a final block must be the same everywhere, so anything but
	// zero is a bug.
	Forks int
	// PlainJoined is, per member, how long after its start the member's
	// plain-geth node (only --discovery.dns) was connected to every geth
	// node of its member; PlainDialled is how many of those it dialled
	// itself, from the tree (the others dialled it: their agents know it
	// from the registrar).
	PlainJoined  map[string]time.Duration
	PlainDialled map[string]int
}

// monitor watches the registrar and every geth node and prints what
// changes: registrations, peers, the mesh, blocks.
type monitor struct {
	d      *Devnet
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	st      Stats
	clients map[string]*rpc.Client // by IPC path
	links   map[[2]string]bool     // labels, sorted
	meshOK  bool
	printed uint64 // the last block printed
	// shown is what the block lines said of the latest heights (run
	// goroutine only).
	shown map[uint64]shownBlock
	// siblingSaid: a block line has explained an out-of-turn sibling's
	// replacement (run goroutine only).
	siblingSaid bool
	after       uint64 // the last registrar event printed
	// registered holds the nodes a "registered" line named in this run
	// (run goroutine only).
	registered map[string]bool

	// BFT: when each height was first decided here (under mu, from
	// watchDecided).
	decided     map[uint64]time.Time
	decidedDone chan struct{}

	// Run goroutine only: each node's last answer; BFT: the hash each
	// node showed per height, and the last block printed.
	last                 map[*gethNode]obs
	hashes               *hashBook
	prevNumber, prevTime uint64
}

func startMonitor(d *Devnet) *monitor {
	ctx, cancel := context.WithCancel(context.Background())
	m := &monitor{
		d: d, cancel: cancel, done: make(chan struct{}),
		st:      Stats{Started: d.start, FirstBlock: map[string]time.Time{}, PlainJoined: map[string]time.Duration{}, PlainDialled: map[string]int{}},
		clients: map[string]*rpc.Client{}, links: map[[2]string]bool{},
		shown: map[uint64]shownBlock{}, registered: map[string]bool{}, hashes: newHashBook(), decided: map[uint64]time.Time{}, decidedDone: make(chan struct{}),
		last: map[*gethNode]obs{},
	}
	go m.run(ctx)
	if d.cfg.Consensus == BFT {
		go m.watchDecided(ctx)
	} else {
		close(m.decidedDone)
	}
	return m
}

func (m *monitor) stop() {
	m.cancel()
	<-m.done
	<-m.decidedDone
	for _, c := range m.clients {
		c.Close()
	}
}

func (m *monitor) stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.st
	s.FirstBlock = maps.Clone(m.st.FirstBlock)
	s.PlainJoined = maps.Clone(m.st.PlainJoined)
	s.PlainDialled = maps.Clone(m.st.PlainDialled)
	return s
}

// plainJoined records member's plain-geth node's join.
func (m *monitor) plainJoined(member string, took time.Duration, dialled int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.st.PlainJoined[member] = took
	m.st.PlainDialled[member] = dialled
}

func (m *monitor) run(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		m.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// view is what one tick knows of the consortium.
type view struct {
	names   map[string]string         // node ID -> label
	roles   map[string]string         // node ID -> role
	signers map[common.Address]string // Clique signer -> label
	// BFT: a member's fee recipient (a block's miner) -> member, and a
	// member -> the label of its validator node.
	proposers  map[common.Address]string
	validators map[string]string
	// plain are the node IDs of the plain-geth nodes.
	plain map[string]bool
}

func (m *monitor) view() (view, []*gethNode) {
	d := m.d
	d.mu.Lock()
	all, nodes := d.all, d.nodes
	v := view{names: map[string]string{}, roles: map[string]string{}, signers: map[common.Address]string{}, plain: map[string]bool{}}
	for _, n := range d.plain {
		v.plain[n.spec.ID] = true
		v.names[n.spec.ID] = n.spec.Label()
		v.roles[n.spec.ID] = string(n.spec.Role)
	}
	d.mu.Unlock()
	v.proposers, v.validators = proposersOf(d.Manifest())
	for _, s := range all {
		v.names[s.ID] = s.Label()
		v.roles[s.ID] = string(s.Role)
		if s.Signer != nil {
			v.signers[*s.Signer] = s.Label()
		}
	}
	return v, nodes
}

func (m *monitor) tick(ctx context.Context) {
	v, nodes := m.view()
	m.events(v)
	bft := m.d.cfg.Consensus == BFT

	var seen []obs
	for _, n := range nodes {
		if _, up := n.running(); !up {
			delete(m.last, n)
			continue
		}
		o, ok := m.observe(ctx, n, bft)
		if !ok {
			// A running geth too busy to answer in time (a dozen of
			// them starting on two cores) keeps its last links for a
			// moment rather than flapping them down and up.
			if last, had := m.last[n]; had && time.Since(last.at) < staleObs {
				seen = append(seen, last)
			}
			continue
		}
		m.last[n] = o
		seen = append(seen, o)
	}
	if ctx.Err() != nil {
		return // stopping: the calls failed for that, not for the nodes
	}

	// Links: a pair is up when either side reports it. The plain-geth
	// nodes' links are theirs to report (watchPlain), not the mesh's.
	up := map[[2]string]bool{}
	for _, o := range seen {
		for _, id := range o.peers {
			if v.plain[id] {
				continue
			}
			name, ok := v.names[id]
			if !ok {
				name = outsidePrefix + id // named when printed: it may register meanwhile
			}
			up[pairOf(o.n.spec.Label(), name)] = true
		}
	}
	// Intended links between every geth node of the devnet, running or
	// not: a stopped node's links count as down.
	isUp := map[string]bool{}
	for _, o := range seen {
		isUp[o.n.spec.Label()] = true
	}
	expected := map[[2]string]bool{}
	linked := true // every intended link between running nodes is up
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			if !intended(a.spec, b.spec) {
				continue
			}
			p := pairOf(a.spec.Label(), b.spec.Label())
			expected[p] = true
			if isUp[a.spec.Label()] && isUp[b.spec.Label()] && !up[p] {
				linked = false
			}
		}
	}
	var have int
	for p := range expected {
		if up[p] {
			have++
		}
	}
	var newLinks, lost [][2]string
	m.mu.Lock()
	for p := range up {
		if !m.links[p] {
			newLinks = append(newLinks, p)
		}
	}
	for p := range m.links {
		if !up[p] {
			lost = append(lost, p)
		}
	}
	m.links = up
	m.st.Links, m.st.Expected = have, len(expected)
	m.mu.Unlock()
	sortPairs(newLinks)
	sortPairs(lost)
	var regs map[string]registry.NodeView
	if len(newLinks)+len(lost) > 0 {
		regs = map[string]registry.NodeView{}
		for _, r := range m.d.reg.reg.Nodes(admin) {
			regs[r.ID] = r
		}
	}
	for _, p := range newLinks {
		a, b, note := linkLine(v, regs, p, expected[p])
		m.d.out.printf("peer       %s <-> %s  [%d/%d links]%s", a, b, have, len(expected), note)
	}
	for _, p := range lost {
		a, b, _ := linkLine(v, regs, p, expected[p])
		m.d.out.printf("peer lost  %s <-> %s  [%d/%d links]", a, b, have, len(expected))
	}
	// The mesh is complete when every intended link is up, so every
	// node runs. A stopped node makes it incomplete; the running ones may
	// still be fully linked.
	complete := len(nodes) > 0 && len(seen) == len(nodes) && have == len(expected)
	m.mu.Lock()
	was := m.meshOK
	m.meshOK = complete
	first := complete && m.st.Mesh.IsZero()
	if first {
		m.st.Mesh = time.Now()
	}
	m.mu.Unlock()
	switch {
	case first:
		m.d.out.printf("mesh complete: %d geth nodes, %d links, %.1fs after start", len(seen), len(expected), time.Since(m.d.start).Seconds())
	case complete && !was:
		m.d.out.printf("mesh complete again: %d geth nodes, %d links", len(seen), len(expected))
	}

	var maxHead uint64
	var best *gethNode
	for _, o := range seen {
		if o.head > maxHead || best == nil {
			maxHead, best = o.head, o.n
		}
	}
	m.mu.Lock()
	m.st.Head = max(m.st.Head, maxHead)
	m.mu.Unlock()
	if bft {
		if best != nil {
			m.bftBlocks(ctx, v, best, maxHead)
		}
		return
	}
	// Signers seal once the nodes that should be up are, and linked: at
	// start-up all of them, later (a restart, a join) the running ones.
	gate := linked && (complete || m.d.startupDone.Load())
	for _, o := range seen {
		m.maybeSeal(ctx, o.n, gate, len(o.peers), o.head, maxHead)
	}
	if best != nil {
		m.blocks(ctx, v, best, maxHead)
	}
}

// staleObs is how long a node that does not answer keeps its last
// observation.
const staleObs = 5 * time.Second

// obs is what one tick saw of a geth node.
type obs struct {
	n     *gethNode
	peers []string
	head  uint64
	at    time.Time
}

// observe reads a node's peers and head; on a BFT chain it also feeds the
// hash book.
func (m *monitor) observe(ctx context.Context, n *gethNode, bft bool) (obs, bool) {
	c := m.client(ctx, n.ipcPath)
	if c == nil {
		return obs{}, false
	}
	var peers []struct {
		ID string `json:"id"`
	}
	var head struct {
		Number hexutil.Uint64 `json:"number"`
		Hash   common.Hash    `json:"hash"`
	}
	if err := m.call(ctx, c, n.ipcPath, &peers, "admin_peers"); err != nil {
		return obs{}, false
	}
	if err := m.call(ctx, c, n.ipcPath, &head, "eth_getBlockByNumber", "latest", false); err != nil {
		return obs{}, false
	}
	o := obs{n: n, head: uint64(head.Number), at: time.Now()}
	if bft {
		m.observeHash(o.head, head.Hash, n.spec.Label())
	}
	for _, p := range peers {
		o.peers = append(o.peers, p.ID)
	}
	return o, true
}

// reusedChain reports, once, a chain that was there before this run: its
// head is said, not all of its history, and only blocks made from now on
// count.
func (m *monitor) reusedChain(head uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.printed != 0 || head == 0 || !m.d.reused {
		return false
	}
	m.d.out.printf("chain      at block %d", head)
	m.printed = head
	return true
}

// firstBlock notes member's first block (made: "sealed" or "proposed").
func (m *monitor) firstBlock(member, made string) {
	m.mu.Lock()
	first := member != "?" && m.st.FirstBlock[member].IsZero()
	if first {
		m.st.FirstBlock[member] = time.Now()
	}
	m.mu.Unlock()
	if first {
		m.d.out.printf("first block %s by %s, %.1fs after start", made, member, time.Since(m.d.start).Seconds())
	}
}

// sealAnyway is how long a signer waits for the mesh before it seals
// regardless: a member whose links do not come up must not stop the chain.
const sealAnyway = 45 * time.Second

// maybeSeal starts a signer sealing once the mesh is complete and the
// signer has caught up with the best head, or after sealAnyway.
func (m *monitor) maybeSeal(ctx context.Context, n *gethNode, mesh bool, peers int, head, best uint64) {
	if !n.isSigner() {
		return
	}
	since, sealing := n.sealState()
	if sealing {
		return
	}
	// At the head, not one behind: a signer that seals on a parent the
	// others have moved past forks the chain, and geth 1.13 heals a fork
	// only on its next forced sync, seconds later.
	ready := mesh && peers > 0 && head >= best
	late := time.Since(since) > sealAnyway
	if !ready && !late {
		return
	}
	if err := n.startSealing(ctx); err != nil {
		return // geth restarting; next tick
	}
	why := "peered and at the head"
	if !ready {
		why = fmt.Sprintf("after %s without the full mesh (%d peers, head %d of %d)", sealAnyway, peers, head, best)
	}
	m.d.out.printf("sealing    %-16s signs blocks now (miner_start: %s)", n.spec.Label(), why)
}

// outsidePrefix marks, in a link, a node the devnet did not start.
const outsidePrefix = "outside:"

// events prints the registrar's new events.
func (m *monitor) events(v view) {
	for _, e := range m.d.reg.reg.Events(admin, m.after) {
		m.after = e.Seq
		name := v.names[e.Node]
		if name == "" && e.Node != "" {
			name = e.Member + "/" + e.Node[:min(12, len(e.Node))]
		}
		switch e.Kind {
		case registry.EventRegistered, registry.EventUpdated:
			m.d.out.printf("%s", registeredLine(name, e.Role, e.Kind == registry.EventUpdated, m.registered[e.Node]))
			m.registered[e.Node] = true
		case registry.EventExpired:
			m.d.out.printf("lease out  %-16s %s (no renewal: it left every peer set)", name, e.Role)
		case registry.EventRemoved:
			m.d.out.printf("removed    %s", name)
		case registry.EventLeft:
			m.d.out.printf("left       %-16s %s (out of every peer set: its member was revoked, or it is public no more)", name, e.Role)
		case registry.EventMemberAdded:
			m.d.out.printf("member     %s added at the registrar", e.Member)
		case registry.EventMemberRevoked:
			m.d.out.printf("member     %s revoked", e.Member)
		}
	}
}

func (m *monitor) client(ctx context.Context, ipc string) *rpc.Client {
	if c, ok := m.clients[ipc]; ok {
		return c
	}
	dctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	c, err := rpc.DialIPC(dctx, ipc)
	if err != nil {
		return nil
	}
	m.clients[ipc] = c
	return c
}

// call makes one call; on failure the connection is dropped and dialled
// again next time (geth may have restarted).
func (m *monitor) call(ctx context.Context, c *rpc.Client, ipc string, out any, method string, args ...any) error {
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err := c.CallContext(cctx, out, method, args...)
	if err != nil {
		c.Close()
		delete(m.clients, ipc)
		return fmt.Errorf("%s: %w", method, err)
	}
	return nil
}
