// Package ethclient is the small part of an Ethereum client's admin RPC that
// the agent needs: who the node is, who it is connected to, and the calls
// that change its static and trusted peers.
//
// The agent depends on the Client interface; Geth implements it over
// go-ethereum's rpc package, through the IPC socket or an HTTP URL. Errors
// from the RPC library stop here: callers branch on this package's sentinel
// errors (error.go) with errors.Is.
//
// What the calls really do on geth (shown on real geth by this package's tests):
// AddPeer returns success even for a peer that will never connect, so only
// Peers confirms a connection; AddPeer for a node ID geth already has as a
// static peer is ignored, even with a new endpoint; RemovePeer drops the
// static entry AND disconnects; the trusted calls only flip the trusted flag;
// and a restarted client has forgotten all of it.
package ethclient

import (
	"context"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Client is the admin surface of one Ethereum client.
type Client interface {
	// NodeInfo describes the client's own node.
	NodeInfo(ctx context.Context) (NodeInfo, error)
	// Peers lists the connected peers.
	Peers(ctx context.Context) ([]Peer, error)
	// AddPeer makes n a static peer, dialled and re-dialled by the client.
	AddPeer(ctx context.Context, n *enode.Node) error
	// RemovePeer forgets n as a static peer and disconnects it.
	RemovePeer(ctx context.Context, n *enode.Node) error
	// AddTrustedPeer lets n connect even when the peer slots are full.
	AddTrustedPeer(ctx context.Context, n *enode.Node) error
	// RemoveTrustedPeer clears n's trusted flag; it stays connected.
	RemoveTrustedPeer(ctx context.Context, n *enode.Node) error
	// HeadBlock is the number of the client's current head block.
	HeadBlock(ctx context.Context) (uint64, error)
	// Syncing reports whether the client is catching up on blocks.
	Syncing(ctx context.Context) (bool, error)
	// Close releases the connection.
	Close()
}

// NodeInfo is the client's own node (admin_nodeInfo).
type NodeInfo struct {
	ID   enode.ID
	Node *enode.Node // Enode parsed
	// Enode is the URL other nodes dial, as the client advertises it.
	Enode string
	// ENR is the node's signed record ("enr:...").
	ENR string
	// Name is the client version string, e.g. "Geth/v1.17.10-stable/linux-amd64/go1.26.8".
	Name string
	// IP is the advertised IP address.
	IP            string
	ListenerPort  int // devp2p TCP port
	DiscoveryPort int // UDP discovery port; 0 when discovery is off
	// ListenAddr is the address the devp2p listener is bound to.
	ListenAddr string
	// Clique is true on a Clique chain (the chain config of
	// protocols.eth names it), and CliquePeriod its block period: the
	// agent's stall guard expects a block each period (0 when unknown, or
	// on a period-0 chain that seals only on transactions).
	Clique       bool
	CliquePeriod time.Duration
}

// Peer is one connected peer (an element of admin_peers).
type Peer struct {
	ID enode.ID
	// Node is Enode parsed. For an inbound peer its TCP port is the
	// remote end's ephemeral port, not a port anyone can dial.
	Node  *enode.Node
	Enode string
	// Name is the peer's client version string.
	Name       string
	RemoteAddr string
	LocalAddr  string
	Inbound    bool
	Trusted    bool
	// Static is set when this side dialled the connection as a static
	// peer; an inbound connection from a static peer does not show it.
	Static bool
}
