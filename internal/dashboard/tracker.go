package dashboard

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consortium/consortium/internal/registry"
)

// tracker derives what the registry does not record: peer connections that
// appear and vanish between status reports, when each node last changed, and
// which member sealed the blocks the nodes report as their head. It works on
// the administrator's view and is read through the visibility filters below.
//
// It learns only when it is fed (on a page's tick, or by Run while a page
// is open), so a change that comes and goes between two looks is not seen:
// the events it derives are a sampled account, which the page says.
type tracker struct {
	mu      sync.Mutex
	primed  bool
	index   uint64
	at      time.Time
	edges   map[edgeKey]struct{}
	nodes   map[string]trackedNode
	blocks  map[uint64]seenBlock
	signers map[string]claim // coinbase -> the member that claims it
	keep    int              // blocks kept
	ring    []Event
	next    uint64 // seq of the next derived event
}

// seenBlock is a head a node reported: its signer, and whether the
// registrar checked the signer against the block's seal.
type seenBlock struct {
	signer string
	sealed bool
}

// claim is a member's claim of a coinbase, and whether the registrar
// checked it (the coinbase key signed the node's ID).
type claim struct {
	member  string
	checked bool
}

type trackedNode struct {
	member, role string
	live         bool
	peers        string // the reported peer IDs, joined
	updated      time.Time
	changed      time.Time
}

func newTracker(events, blocks int) *tracker {
	return &tracker{
		edges: map[edgeKey]struct{}{}, nodes: map[string]trackedNode{},
		blocks: map[uint64]seenBlock{}, signers: map[string]claim{},
		keep: blocks, ring: make([]Event, events),
	}
}

// stale reports whether the tracker should look again.
func (t *tracker) stale(index uint64, now time.Time, every time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return !t.primed || index != t.index || now.Sub(t.at) >= every
}

// observe takes the administrator's node list at index and now. The first
// call only sets the baseline: connections that existed before anyone
// looked are not announced as new.
func (t *tracker) observe(nodes []Node, index uint64, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.index, t.at = index, now.UTC()

	cur := edges(nodes)
	seen := make(map[string]trackedNode, len(nodes))
	signers := map[string]claim{}
	for _, n := range nodes {
		tn := trackedNode{member: n.Member, role: n.Role, live: n.Live, peers: strings.Join(n.PeerIDs, ","), updated: n.Changed}
		prev, ok := t.nodes[n.ID]
		switch {
		case !ok || !n.Changed.Equal(prev.updated):
			tn.changed = n.Changed
		case prev.live && !n.Live && n.Expires.Before(now):
			tn.changed = n.Expires.UTC()
		case prev.live != n.Live || prev.peers != tn.peers:
			tn.changed = now.UTC()
		default:
			tn.changed = prev.changed
		}
		seen[n.ID] = tn
		if n.Coinbase != "" {
			// A checked claim wins over an unchecked one, then a
			// validator's over another role's.
			c := claim{member: n.Member, checked: n.CoinbaseChecked}
			if have, ok := signers[n.Coinbase]; !ok || (c.checked && !have.checked) || (c.checked == have.checked && n.Role == "validator") {
				signers[n.Coinbase] = c
			}
		}
		if n.Live && n.HeadSigner != "" && n.Head > 0 {
			if b, ok := t.blocks[n.Head]; !ok || (n.SealChecked && !b.sealed) {
				t.blocks[n.Head] = seenBlock{signer: n.HeadSigner, sealed: n.SealChecked}
			}
		}
	}
	if t.primed {
		var added, removed []edgeKey
		for e := range cur {
			if _, ok := t.edges[e]; !ok {
				added = append(added, e)
			}
		}
		for e := range t.edges {
			if _, ok := cur[e]; !ok {
				removed = append(removed, e)
			}
		}
		sortEdges(added)
		sortEdges(removed)
		info := func(id string) trackedNode {
			if n, ok := seen[id]; ok {
				return n
			}
			return t.nodes[id]
		}
		for _, e := range removed {
			t.derive(EventDisconnected, e, info(e[0]), info(e[1]), now)
		}
		for _, e := range added {
			t.derive(EventPeered, e, info(e[0]), info(e[1]), now)
		}
	}
	t.edges, t.nodes, t.signers, t.primed = cur, seen, signers, true
	if len(t.blocks) > t.keep {
		nums := make([]uint64, 0, len(t.blocks))
		for n := range t.blocks {
			nums = append(nums, n)
		}
		sort.Slice(nums, func(i, j int) bool { return nums[i] > nums[j] })
		for _, n := range nums[t.keep:] {
			delete(t.blocks, n)
		}
	}
}

func sortEdges(es []edgeKey) {
	sort.Slice(es, func(i, j int) bool {
		if es[i][0] != es[j][0] {
			return es[i][0] < es[j][0]
		}
		return es[i][1] < es[j][1]
	})
}

// derive must be called with mu held.
func (t *tracker) derive(kind string, e edgeKey, a, b trackedNode, now time.Time) {
	t.next++
	t.ring[(t.next-1)%uint64(len(t.ring))] = Event{
		Key: "p" + strconv.FormatUint(t.next, 10), Time: now.UTC(), Kind: kind,
		Member: a.member, Node: e[0], Role: a.role,
		Peer: e[1], PeerMember: b.member, PeerRole: b.role,
	}
}

// eventsAfter returns the derived events after seq that p may see, oldest
// first, and the seq to ask from next time.
func (t *tracker) eventsAfter(p registry.Principal, after uint64) ([]Event, uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := uint64(len(t.ring))
	start := after
	if t.next > n && start < t.next-n {
		start = t.next - n
	}
	var out []Event
	for s := start; s < t.next; s++ {
		if e := t.ring[s%n]; visibleEvent(p, e) {
			out = append(out, e)
		}
	}
	return out, t.next
}

// changed is when node id last changed, as far as the tracker saw.
func (t *tracker) changed(id string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.nodes[id]
	return n.changed, ok
}

// recentBlocks lists the blocks seen, newest first, each with the member
// whose node reports the sealer's address as its coinbase; Checked when the
// registrar verified both the seal and that member's coinbase.
func (t *tracker) recentBlocks() []Block {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]Block, 0, len(t.blocks))
	for num, b := range t.blocks {
		c := t.signers[b.signer]
		out = append(out, Block{Number: num, Signer: b.signer, Member: c.member, Checked: b.sealed && c.checked})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number > out[j].Number })
	return out
}
