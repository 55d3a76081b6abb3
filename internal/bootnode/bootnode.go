// Package bootnode runs a discovery bootnode: discv4 and discv5 on one UDP
// port, around go-ethereum's p2p/discover, the way geth's own p2p.Server
// shares its socket between the two versions.
//
// The bootnode exists so that the nodes of one member find each other, so it
// knows only the nodes the operator names: it never falls back to public
// network bootnodes. Its key is kept on disk so its enode survives restarts,
// and its record (Record) is signed with a sequence number that keeps growing
// across restarts, so the registrar accepts it again after each one.
package bootnode

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"

	gethlog "github.com/ethereum/go-ethereum/log"
	"github.com/ethereum/go-ethereum/p2p/discover"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
	"github.com/ethereum/go-ethereum/p2p/netutil"
)

// DefaultListenAddr is the port geth's old cmd/bootnode used.
const DefaultListenAddr = ":30301"

// Config configures a Bootnode. The zero value is usable: it listens on
// DefaultListenAddr with a throw-away key.
type Config struct {
	// ListenAddr is the UDP host:port shared by discv4 and discv5.
	// Default DefaultListenAddr; port 0 picks a free port.
	ListenAddr string
	// KeyFile holds the node key in geth's nodekey format. It is created with
	// mode 0600 when missing and reused afterwards, so the enode stays the same.
	// Default: DataDir/nodekey when DataDir is set, otherwise a key that lives
	// only as long as the process (tests; never a real bootnode).
	KeyFile string
	// DataDir holds the node database (DataDir/nodes): the nodes seen before a
	// restart are contacted again, and the record's sequence number is stored.
	// Default "": in memory, and the sequence number starts from the clock in
	// milliseconds, which also grows across restarts while the clock is sane.
	DataDir string
	// NetRestrict is a comma-separated CIDR list ("10.0.0.0/8, 192.168.0.0/16").
	// Packets from outside it are dropped before discv4 or discv5 see them, and
	// nodes outside it are never learned or handed out. Default "": no restriction.
	NetRestrict string
	// ExternalIP is the IP advertised in the record (geth's --nat extip:IP).
	// Default: the ListenAddr IP when it is specific, else 127.0.0.1 until
	// other nodes agree on what they see.
	ExternalIP net.IP
	// Bootnodes are the only nodes contacted at start, for both versions.
	// Default none: a bootnode waits to be contacted.
	Bootnodes []*enode.Node
	// NoLivenessCheck makes the bootnode hand out nodes it has not yet
	// re-pinged. Nodes only enter its table after proving their endpoint, but
	// go-ethereum by default answers FINDNODE with revalidated nodes only, to
	// resist eclipse attacks; that delays each newcomer by a revalidation round
	// (two discv5 nodes on loopback meet in a median 1 s with this set, 3 s and
	// up to 6 s without). Worth setting behind NetRestrict.
	// Default false: go-ethereum's behaviour.
	NoLivenessCheck bool
	// Logger receives the bootnode's and go-ethereum's discovery logs.
	// Default: discarded.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.KeyFile == "" && c.DataDir != "" {
		c.KeyFile = filepath.Join(c.DataDir, "nodekey")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Bootnode is a discv4 + discv5 bootnode. Create it with New, run it with
// Start, stop it with Close or by cancelling Start's context.
type Bootnode struct {
	cfg   Config
	log   *slog.Logger
	laddr *net.UDPAddr
	allow *netutil.Netlist
	key   *ecdsa.PrivateKey
	db    *enode.DB
	ln    *enode.LocalNode

	mu      sync.Mutex
	state   int // stateNew, stateStarted or stateClosed
	conn    *restrictedConn
	v4      *discover.UDPv4
	v5      *discover.UDPv5
	stopCtx func() bool // detaches Close from Start's context
}

const (
	stateNew = iota
	stateStarted
	stateClosed
)

// New checks cfg, loads or creates the node key and opens the node database.
// Nothing touches the network before Start.
func New(cfg Config) (*Bootnode, error) {
	cfg = cfg.withDefaults()
	laddr, err := net.ResolveUDPAddr("udp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBadListenAddr, cfg.ListenAddr, err)
	}
	allow, err := parseNetRestrict(cfg.NetRestrict)
	if err != nil {
		return nil, err
	}
	if ip := cfg.ExternalIP; ip != nil && (ip.To16() == nil || ip.IsUnspecified()) {
		return nil, fmt.Errorf("%w: %v", ErrBadExternalIP, ip)
	}
	for i, n := range cfg.Bootnodes {
		if n == nil || n.UDP() == 0 || !n.IPAddr().IsValid() {
			return nil, fmt.Errorf("%w: entry %d has no IP or UDP port", ErrBadBootnode, i)
		}
	}
	key, err := loadOrCreateKey(cfg.KeyFile, cfg.Logger)
	if err != nil {
		return nil, err
	}
	dbPath := ""
	if cfg.DataDir != "" {
		dbPath = filepath.Join(cfg.DataDir, "nodes")
	}
	db, err := enode.OpenDB(dbPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNodeDB, dbPath, err)
	}
	ln := enode.NewLocalNode(db, key)
	ln.SetFallbackIP(net.IPv4(127, 0, 0, 1))
	if cfg.ExternalIP != nil {
		ln.SetStaticIP(cfg.ExternalIP)
	}
	return &Bootnode{
		cfg: cfg, log: cfg.Logger, laddr: laddr, allow: allow,
		key: key, db: db, ln: ln,
	}, nil
}

// parseNetRestrict parses s; "" means no restriction, but a non-empty s that
// names no network is a mistake, not a request to refuse everyone.
func parseNetRestrict(s string) (*netutil.Netlist, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	list, err := netutil.ParseNetlist(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrBadNetRestrict, s, err)
	}
	if len(*list) == 0 {
		return nil, fmt.Errorf("%w: %q names no network", ErrBadNetRestrict, s)
	}
	return list, nil
}

// Start binds the UDP socket and starts discv4 and discv5 on it. The
// bootnode closes itself when ctx is cancelled.
func (b *Bootnode) Start(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case stateStarted:
		return ErrStarted
	case stateClosed:
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	udp, err := net.ListenUDP("udp", b.laddr)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrListen, err)
	}
	bound := udp.LocalAddr().(*net.UDPAddr)
	b.ln.SetFallbackUDP(bound.Port)
	if !bound.IP.IsUnspecified() {
		b.ln.SetFallbackIP(bound.IP)
	} else if b.cfg.ExternalIP == nil {
		// The record learns our address only once 10 peers agree on it,
		// which a small member network may never reach.
		b.log.Warn("listening on all interfaces without ExternalIP: advertising 127.0.0.1")
	}

	conn := &restrictedConn{UDPConn: udp, allow: b.allow, log: b.log}
	unhandled := make(chan discover.ReadPacket, 100) // as p2p.Server: v4 drops packets when full
	v4, err := discover.ListenV4(conn, b.ln, b.discoverConfig(unhandled))
	if err != nil {
		udp.Close()
		return fmt.Errorf("%w: discv4: %v", ErrListen, err)
	}
	v5, err := discover.ListenV5(newSharedConn(conn, unhandled), b.ln, b.discoverConfig(nil))
	if err != nil {
		v4.Close() // closes udp
		return fmt.Errorf("%w: discv5: %v", ErrListen, err)
	}
	b.conn, b.v4, b.v5 = conn, v4, v5
	b.state = stateStarted
	b.stopCtx = context.AfterFunc(ctx, func() { b.Close() })

	self := b.ln.Node()
	b.log.Info("bootnode started", "listen", bound.String(), "id", self.ID(), "seq", self.Seq(),
		"enode", b.enodeURL(self), "netrestrict", b.cfg.NetRestrict, "bootnodes", len(b.cfg.Bootnodes))
	return nil
}

// discoverConfig is the configuration for one discovery version. Bootnodes is
// exactly the operator's list: go-ethereum adds no defaults here (geth's
// mainnet fallback lives in cmd/utils), and nor do we.
func (b *Bootnode) discoverConfig(unhandled chan<- discover.ReadPacket) discover.Config {
	return discover.Config{
		PrivateKey:  b.key,
		NetRestrict: b.allow,
		Bootnodes:   b.cfg.Bootnodes,
		Unhandled:   unhandled,
		Log:         gethlog.NewLogger(b.log.Handler()),

		NoFindnodeLivenessCheck: b.cfg.NoLivenessCheck,
	}
}

// Close stops discovery and closes the socket and the node database. It is
// safe to call more than once, and before Start.
func (b *Bootnode) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == stateClosed {
		return nil
	}
	if b.stopCtx != nil {
		b.stopCtx()
	}
	// discv4 first, as p2p.Server does: it owns the socket.
	if b.v4 != nil {
		b.v4.Close()
	}
	if b.v5 != nil {
		b.v5.Close()
	}
	b.db.Close()
	b.state = stateClosed
	b.log.Info("bootnode stopped", "id", b.ln.ID())
	return nil
}

// LocalNode is the bootnode's local record builder, shared by both versions.
func (b *Bootnode) LocalNode() *enode.LocalNode { return b.ln }

// ID is the node ID, known from New on.
func (b *Bootnode) ID() enode.ID { return b.ln.ID() }

// Self is the current signed record. Before Start it carries no UDP port.
func (b *Bootnode) Self() *enode.Node { return b.ln.Node() }

// Record is a copy of the current signed record, for registration with the
// registrar. Its sequence number only grows, also across restarts; it changes
// while running only if ExternalIP is unset and peers report a new address.
func (b *Bootnode) Record() *enr.Record { return b.ln.Node().Record() }

// ENR is the current record in text form ("enr:-...").
func (b *Bootnode) ENR() string { return b.ln.Node().String() }

// Enode is the bootnode's URL for --bootnodes: enode://ID@IP:PORT.
func (b *Bootnode) Enode() string { return b.enodeURL(b.ln.Node()) }

// enodeURL writes the UDP port in the TCP position, as geth's old bootnode
// did: the record has no TCP port (nothing listens there), and URLv4 would
// print "IP:0?discport=PORT", which operators do not expect.
func (b *Bootnode) enodeURL(n *enode.Node) string {
	if n.UDP() == 0 {
		return n.URLv4()
	}
	return enode.NewV4(&b.key.PublicKey, n.IP(), n.UDP(), n.UDP()).URLv4()
}
