package ethclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rpc"
)

// Config says how to reach a geth node.
type Config struct {
	// Endpoint is the IPC socket path or an http(s):// or ws(s):// URL.
	// The IPC socket always serves the admin API; over HTTP geth needs
	// --http.api admin. Required.
	Endpoint string
	// CallTimeout bounds each call whose context has no deadline.
	// Default: 10 s.
	CallTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.CallTimeout <= 0 {
		c.CallTimeout = 10 * time.Second
	}
	return c
}

// Geth is the Client for go-ethereum. Over IPC and WebSocket the connection
// is re-established on the next call after geth restarts; the caller cannot
// tell from the calls alone that geth forgot its peers.
type Geth struct {
	cfg Config
	c   *rpc.Client
}

var _ Client = (*Geth)(nil)

// Dial connects to geth. For IPC the socket is opened now, so a missing
// geth is an ErrUnavailable here; for HTTP nothing is sent until the first
// call.
func Dial(ctx context.Context, cfg Config) (*Geth, error) {
	cfg = cfg.withDefaults()
	if cfg.Endpoint == "" {
		return nil, &Error{Method: "dial", Kind: ErrUnavailable, Message: "no endpoint configured"}
	}
	c, err := rpc.DialContext(ctx, cfg.Endpoint)
	if err != nil {
		return nil, wrap(ctx, "dial", err)
	}
	return &Geth{cfg: cfg, c: c}, nil
}

// Close closes the connection.
func (g *Geth) Close() { g.c.Close() }

func (g *Geth) call(ctx context.Context, result any, method string, args ...any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.cfg.CallTimeout)
		defer cancel()
	}
	if err := g.c.CallContext(ctx, result, method, args...); err != nil {
		return wrap(ctx, method, err)
	}
	return nil
}

type nodeInfoJSON struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Enode string `json:"enode"`
	ENR   string `json:"enr"`
	IP    string `json:"ip"`
	Ports struct {
		Discovery int `json:"discovery"`
		Listener  int `json:"listener"`
	} `json:"ports"`
	ListenAddr string `json:"listenAddr"`
	Protocols  struct {
		Eth struct {
			Config struct {
				Clique *struct {
					Period uint64 `json:"period"`
				} `json:"clique"`
			} `json:"config"`
		} `json:"eth"`
	} `json:"protocols"`
}

// NodeInfo calls admin_nodeInfo.
func (g *Geth) NodeInfo(ctx context.Context) (NodeInfo, error) {
	const method = "admin_nodeInfo"
	var r nodeInfoJSON
	if err := g.call(ctx, &r, method); err != nil {
		return NodeInfo{}, err
	}
	node, err := parseNode(method, r.ID, r.Enode)
	if err != nil {
		return NodeInfo{}, err
	}
	return NodeInfo{
		ID:            node.ID(),
		Node:          node,
		Enode:         r.Enode,
		ENR:           r.ENR,
		Name:          r.Name,
		IP:            r.IP,
		ListenerPort:  r.Ports.Listener,
		DiscoveryPort: r.Ports.Discovery,
		ListenAddr:    r.ListenAddr,
		Clique:        r.Protocols.Eth.Config.Clique != nil,
		CliquePeriod:  cliquePeriod(r),
	}, nil
}

func cliquePeriod(r nodeInfoJSON) time.Duration {
	c := r.Protocols.Eth.Config.Clique
	if c == nil || c.Period > 3600 {
		return 0
	}
	return time.Duration(c.Period) * time.Second
}

type peerJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Enode   string `json:"enode"`
	Network struct {
		LocalAddress  string `json:"localAddress"`
		RemoteAddress string `json:"remoteAddress"`
		Inbound       bool   `json:"inbound"`
		Trusted       bool   `json:"trusted"`
		Static        bool   `json:"static"`
	} `json:"network"`
}

// Peers calls admin_peers.
func (g *Geth) Peers(ctx context.Context) ([]Peer, error) {
	const method = "admin_peers"
	var rs []peerJSON
	if err := g.call(ctx, &rs, method); err != nil {
		return nil, err
	}
	peers := make([]Peer, 0, len(rs))
	for _, r := range rs {
		node, err := parseNode(method, r.ID, r.Enode)
		if err != nil {
			return nil, err
		}
		peers = append(peers, Peer{
			ID:         node.ID(),
			Node:       node,
			Enode:      r.Enode,
			Name:       r.Name,
			RemoteAddr: r.Network.RemoteAddress,
			LocalAddr:  r.Network.LocalAddress,
			Inbound:    r.Network.Inbound,
			Trusted:    r.Network.Trusted,
			Static:     r.Network.Static,
		})
	}
	return peers, nil
}

// parseNode parses an enode URL from a response and checks it against the
// ID given beside it, so a confused response is never acted on.
func parseNode(method, id, url string) (*enode.Node, error) {
	node, err := enode.ParseV4(url)
	if err != nil {
		return nil, &Error{Method: method, Kind: ErrBadResponse, Message: fmt.Sprintf("enode %q: %v", url, err)}
	}
	if node.ID().String() != id {
		return nil, &Error{Method: method, Kind: ErrBadResponse, Message: fmt.Sprintf("id %q does not match enode %q", id, url)}
	}
	return node, nil
}

// AddPeer calls admin_addPeer. Success means geth accepted the request, not
// that the peer is connected.
func (g *Geth) AddPeer(ctx context.Context, n *enode.Node) error {
	if n != nil && n.TCP() == 0 {
		return &Error{Method: "admin_addPeer", Kind: ErrInvalidEnode, Message: fmt.Sprintf("%s has no TCP endpoint to dial", n.ID().TerminalString())}
	}
	return g.boolCall(ctx, "admin_addPeer", n)
}

// RemovePeer calls admin_removePeer; geth returns once the peer is gone.
func (g *Geth) RemovePeer(ctx context.Context, n *enode.Node) error {
	return g.boolCall(ctx, "admin_removePeer", n)
}

// AddTrustedPeer calls admin_addTrustedPeer.
func (g *Geth) AddTrustedPeer(ctx context.Context, n *enode.Node) error {
	return g.boolCall(ctx, "admin_addTrustedPeer", n)
}

// RemoveTrustedPeer calls admin_removeTrustedPeer.
func (g *Geth) RemoveTrustedPeer(ctx context.Context, n *enode.Node) error {
	return g.boolCall(ctx, "admin_removeTrustedPeer", n)
}

// boolCall sends n as an enode URL (understood by every geth version, unlike
// an ENR) to a method that answers true or an error.
func (g *Geth) boolCall(ctx context.Context, method string, n *enode.Node) error {
	if n == nil {
		return &Error{Method: method, Kind: ErrInvalidEnode, Message: "no node"}
	}
	var ok bool
	if err := g.call(ctx, &ok, method, n.URLv4()); err != nil {
		return err
	}
	if !ok {
		return &Error{Method: method, Kind: ErrRemote, Message: "returned false"}
	}
	return nil
}

// HeadBlock calls eth_blockNumber.
func (g *Geth) HeadBlock(ctx context.Context) (uint64, error) {
	var n hexutil.Uint64
	if err := g.call(ctx, &n, "eth_blockNumber"); err != nil {
		return 0, err
	}
	return uint64(n), nil
}

// Syncing reports whether geth is catching up on blocks: eth_syncing
// answers with an object whose highestBlock is above its currentBlock.
//
// eth_syncing alone is not used as the answer because geth also answers with
// an object while only its indexes lag, and on a chain still at its genesis
// block that lasts indefinitely (observed on v1.17.10 and v1.13.15:
// txIndexRemainingBlocks stays 1), so a fresh consortium would report every
// node as syncing.
func (g *Geth) Syncing(ctx context.Context) (bool, error) {
	const method = "eth_syncing"
	var raw json.RawMessage
	if err := g.call(ctx, &raw, method); err != nil {
		return false, err
	}
	if string(raw) == "null" {
		// json.Unmarshal would take null for false.
		return false, &Error{Method: method, Kind: ErrBadResponse, Message: "null"}
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		return b, nil
	}
	var progress struct {
		CurrentBlock *hexutil.Uint64 `json:"currentBlock"`
		HighestBlock *hexutil.Uint64 `json:"highestBlock"`
	}
	if err := json.Unmarshal(raw, &progress); err != nil || progress.CurrentBlock == nil || progress.HighestBlock == nil {
		return false, &Error{Method: method, Kind: ErrBadResponse, Message: fmt.Sprintf("neither false nor sync progress: %.100s", raw)}
	}
	return *progress.HighestBlock > *progress.CurrentBlock, nil
}

// wrap turns an error of the rpc library into an *Error. Its text is kept,
// its types are not.
func wrap(ctx context.Context, method string, err error) *Error {
	e := &Error{Method: method, Kind: ErrUnavailable, Message: err.Error()}
	var (
		rpcErr     rpc.Error
		syntaxErr  *json.SyntaxError
		typeErr    *json.UnmarshalTypeError
		invalidErr *json.InvalidUnmarshalError
	)
	switch {
	case ctx.Err() != nil:
		e.ctxErr = ctx.Err()
	case errors.As(err, &rpcErr):
		e.Code = rpcErr.ErrorCode()
		e.Kind = remoteKind(e.Code, rpcErr.Error())
	case errors.Is(err, rpc.ErrNoResult), errors.As(err, &syntaxErr), errors.As(err, &typeErr), errors.As(err, &invalidErr):
		e.Kind = ErrBadResponse
	}
	// Anything else (connection refused or reset, socket missing, an HTTP
	// error status, client closed) stays ErrUnavailable.
	return e
}
