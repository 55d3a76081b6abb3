package dashboard

import (
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/registry"
)

// The wire types of /ui/api/state and /ui/api/stream. They are built only
// from what registry.Nodes and registry.Events give the viewing principal,
// so a member's page can never hold more than its API answers do.

// Node is one row of the page: a node as the viewer may see it, flattened.
type Node struct {
	ID     string `json:"id"`
	Member string `json:"member"`
	Role   string `json:"role"`
	// Endpoint is the private enode URL: filled in only for the viewer's
	// own nodes (every node for the administrator).
	Endpoint       string    `json:"endpoint,omitempty"`
	PublicEndpoint string    `json:"public_endpoint,omitempty"`
	Live           bool      `json:"live"`
	Registered     time.Time `json:"registered"`
	Expires        time.Time `json:"expires"`
	// Changed is the last change of the record, its liveness or (for
	// nodes whose peers the viewer may see) its peer set.
	Changed    time.Time `json:"changed"`
	Client     string    `json:"client,omitempty"`
	Head       uint64    `json:"head"`
	Peers      int       `json:"peers"`
	Syncing    bool      `json:"syncing,omitempty"`
	PeerIDs    []string  `json:"peer_ids,omitempty"`
	HeadSigner string    `json:"head_signer,omitempty"`
	Coinbase   string    `json:"coinbase,omitempty"`
	// SealChecked and CoinbaseChecked say what the registrar verified of
	// the node's claims (registry.Status); the rest is self-reported.
	SealChecked     bool `json:"seal_checked,omitempty"`
	CoinbaseChecked bool `json:"coinbase_checked,omitempty"`
	// Consensus is the node's consensus process's report (BFT consortia).
	Consensus *registry.ConsensusStatus `json:"consensus,omitempty"`
}

func nodeFromView(v registry.NodeView) Node {
	n := Node{
		ID: v.ID, Member: v.Member, Role: v.Role, Endpoint: v.Enode, PublicEndpoint: v.PublicEnode,
		Live: v.Live, Registered: v.Registered, Expires: v.Expires, Changed: v.Updated,
	}
	if s := v.Status; s != nil {
		n.Client, n.Head, n.Peers, n.Syncing = s.Client, s.Head, s.Peers, s.Syncing
		n.PeerIDs, n.HeadSigner, n.Coinbase = s.PeerIDs, strings.ToLower(s.HeadSigner), strings.ToLower(s.Coinbase)
		n.Consensus = s.Consensus
		n.SealChecked, n.CoinbaseChecked = s.SealChecked, s.CoinbaseChecked
	}
	return n
}

// Health of a member as the viewer can see it.
const (
	HealthUp       = "up"       // every node live, none syncing, head current
	HealthDegraded = "degraded" // some node lapsed or syncing, or the head lags
	HealthDown     = "down"     // no live node
	HealthNoNodes  = "no nodes" // nothing registered yet
	HealthRevoked  = "revoked"
)

// Member is one member card.
type Member struct {
	Name    string   `json:"name"`
	Revoked bool     `json:"revoked,omitempty"`
	Health  string   `json:"health"`
	Reason  string   `json:"reason,omitempty"`
	Nodes   int      `json:"nodes"`
	Live    int      `json:"live"`
	Head    uint64   `json:"head"`
	Signers []string `json:"signers,omitempty"`
	Sealed  int      `json:"sealed"` // of the recent blocks
}

// Block is a recently seen block and who sealed it.
type Block struct {
	Number uint64 `json:"number"`
	Signer string `json:"signer"`
	Member string `json:"member,omitempty"` // empty: no validator reports this coinbase
	// Checked is set when the registrar verified the block's seal against
	// the signer and that member's claim of the signer's address; a block
	// without it is credited on the nodes' own word.
	Checked bool `json:"checked,omitempty"`
}

// Event is one entry of the live list: the registry's events and the
// peered/disconnected events derived here.
type Event struct {
	Key        string    `json:"key"` // unique per page: "r<seq>" registry, "p<seq>" derived
	Time       time.Time `json:"time"`
	Kind       string    `json:"kind"`
	Member     string    `json:"member,omitempty"`
	Node       string    `json:"node,omitempty"`
	Role       string    `json:"role,omitempty"`
	Peer       string    `json:"peer,omitempty"`
	PeerMember string    `json:"peer_member,omitempty"`
	PeerRole   string    `json:"peer_role,omitempty"`
}

// Derived event kinds.
const (
	EventPeered       = "peered"
	EventDisconnected = "disconnected"
)

// State is the whole page: the answer of /ui/api/state and the first
// message of the stream.
type State struct {
	Now       time.Time `json:"now"`
	Principal string    `json:"principal"`
	Admin     bool      `json:"admin"`
	Index     uint64    `json:"index"`
	Members   []Member  `json:"members"`
	Nodes     []Node    `json:"nodes"`
	Blocks    []Block   `json:"blocks"`
	Chain     *Chain    `json:"chain"`
	Events    []Event   `json:"events"`
}

// edgeKey is an undirected peer connection, lower ID first.
type edgeKey [2]string

func mkEdge(a, b string) edgeKey {
	if b < a {
		a, b = b, a
	}
	return edgeKey{a, b}
}

// edges are the actual connections among nodes: a live node's reported
// peer that is itself in the list. A connection reported by either side
// counts once. A lapsed node's last report is stale, so it draws nothing.
func edges(nodes []Node) map[edgeKey]struct{} {
	known := make(map[string]struct{}, len(nodes))
	for _, n := range nodes {
		known[n.ID] = struct{}{}
	}
	out := map[edgeKey]struct{}{}
	for _, n := range nodes {
		if !n.Live {
			continue
		}
		for _, p := range n.PeerIDs {
			if _, ok := known[p]; ok && p != n.ID {
				out[mkEdge(n.ID, p)] = struct{}{}
			}
		}
	}
	return out
}

// summarize builds the member cards. all is the registry's member list for
// the administrator and nil for a member, whose cards come from the nodes
// it can see (and itself, even with no nodes).
func summarize(self string, all []registry.MemberView, nodes []Node, blocks []Block, headLag uint64) []Member {
	by := map[string]*Member{}
	get := func(name string) *Member {
		m, ok := by[name]
		if !ok {
			m = &Member{Name: name}
			by[name] = m
		}
		return m
	}
	for _, mv := range all {
		get(mv.Name).Revoked = mv.Revoked
	}
	if self != "" {
		get(self)
	}
	var top uint64
	syncing := map[string]int{}
	signers := map[string]map[string]struct{}{}
	addSigner := func(member, addr string) {
		if signers[member] == nil {
			signers[member] = map[string]struct{}{}
		}
		signers[member][addr] = struct{}{}
	}
	for _, n := range nodes {
		m := get(n.Member)
		m.Nodes++
		if !n.Live {
			continue
		}
		m.Live++
		if n.Head > m.Head {
			m.Head = n.Head
		}
		if n.Head > top {
			top = n.Head
		}
		if n.Syncing {
			syncing[n.Member]++
		}
		if n.Coinbase != "" && n.Role == "validator" {
			addSigner(n.Member, n.Coinbase)
		}
	}
	for _, b := range blocks {
		if b.Member == "" {
			continue
		}
		m := get(b.Member)
		m.Sealed++
		addSigner(b.Member, b.Signer)
	}
	out := make([]Member, 0, len(by))
	for _, m := range by {
		for a := range signers[m.Name] {
			m.Signers = append(m.Signers, a)
		}
		sort.Strings(m.Signers)
		m.Health, m.Reason = health(*m, syncing[m.Name], top, headLag)
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// health rates a member from its counts; top is the highest head any
// visible live node reports.
func health(m Member, syncing int, top, headLag uint64) (string, string) {
	switch {
	case m.Revoked:
		return HealthRevoked, "credential revoked"
	case m.Nodes == 0:
		return HealthNoNodes, "no node registered"
	case m.Live == 0:
		return HealthDown, "no live node"
	case m.Live < m.Nodes:
		return HealthDegraded, plural(m.Nodes-m.Live, "lease", "leases") + " lapsed"
	case syncing > 0:
		return HealthDegraded, plural(syncing, "node", "nodes") + " syncing"
	case top > m.Head+headLag:
		return HealthDegraded, "head behind the consortium's"
	}
	return HealthUp, ""
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// visibleEvent reports whether a derived peer event may be shown to p: both
// ends must be nodes p may see (registry.SightOf), and one of them seen in
// full (the administrator's view, or the member's own node): a member is
// shown its own connections, not those between two other members.
func visibleEvent(p registry.Principal, e Event) bool {
	a := registry.SightOf(p, e.Member, e.Role, true)
	b := registry.SightOf(p, e.PeerMember, e.PeerRole, true)
	return a != registry.SeeNothing && b != registry.SeeNothing && (a == registry.SeeAll || b == registry.SeeAll)
}
