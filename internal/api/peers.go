package api

// PeerSet is one node's peer set at one index in its wire form: the JSON
// answer of GET /v1/nodes/{id}/peers and GET /v1/peers?role=R.
type PeerSet struct {
	Index     uint64   `json:"index"`
	Node      string   `json:"node"`
	Static    []string `json:"static"`
	Trusted   []string `json:"-"` // always Static; the toml format writes it as TrustedNodes
	Bootnodes []string `json:"bootnodes"`
	// Consensus is the CometBFT peer addresses ("id@ip:port") of the static
	// peers whose record carries a "cmt" entry, in the static list's order
	// and at the same endpoint (private for the member's own nodes, public
	// for other members' public nodes).
	Consensus []string `json:"consensus"`
	ENRs      []string `json:"-"` // served by format=enr; left out of JSON, where it would double the body
	ETag      string   `json:"-"` // the ETag header
}

// PeerDelta is the answer to a watcher that asked with delta=1: the
// difference between the answer it held (at Since) and its answer now
// (Index; ETag is the header): what to add to and remove from each list of
// its JSON answer. A PeerDelta is told from a PeerSet by "since".
type PeerDelta struct {
	Index           uint64   `json:"index"`
	Node            string   `json:"node"`
	Since           uint64   `json:"since"`
	StaticAdd       []string `json:"static_add"`
	StaticRemove    []string `json:"static_remove"`
	BootnodesAdd    []string `json:"bootnodes_add"`
	BootnodesRemove []string `json:"bootnodes_remove"`
	ConsensusAdd    []string `json:"consensus_add"`
	ConsensusRemove []string `json:"consensus_remove"`
	ETag            string   `json:"-"`
}
