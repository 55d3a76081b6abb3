package bootnode

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/p2p/discover"
	"github.com/ethereum/go-ethereum/p2p/netutil"
)

// restrictedConn is the one UDP socket, with NetRestrict enforced on every
// packet. go-ethereum's discover.Config.NetRestrict only filters nodes learned
// from other nodes' answers: a PING or a discv5 handshake from any address
// still puts the sender in the table, from where it is handed out to everyone.
// Dropping the packet on arrival is the only place both versions share.
type restrictedConn struct {
	*net.UDPConn
	allow   *netutil.Netlist // nil: every address is allowed
	log     *slog.Logger
	dropped atomic.Uint64 // packets refused on read, for tests and debugging
}

func (c *restrictedConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := c.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil || allowed(c.allow, from.Addr()) {
			return n, from, err
		}
		c.dropped.Add(1)
		c.log.Debug("dropped discovery packet outside netrestrict", "from", from)
	}
}

func (c *restrictedConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if !allowed(c.allow, to.Addr()) {
		return 0, errRestricted
	}
	return c.UDPConn.WriteToUDPAddrPort(b, to)
}

// allowed reports whether ip may talk to the bootnode. A dual-stack socket
// reports IPv4 senders as ::ffff:a.b.c.d, which no IPv4 prefix contains.
func allowed(list *netutil.Netlist, ip netip.Addr) bool {
	return list == nil || list.ContainsAddr(ip.Unmap())
}

// sharedConn is the discv5 side of the socket: it reads the packets discv4
// could not decode, and writes through the restricted socket. It replaces
// discover.SharedUDPConn, whose writes would bypass NetRestrict and whose read
// only returns once discv4 has shut down.
type sharedConn struct {
	*restrictedConn
	in        <-chan discover.ReadPacket
	done      chan struct{}
	closeOnce sync.Once
}

func newSharedConn(c *restrictedConn, in <-chan discover.ReadPacket) *sharedConn {
	return &sharedConn{restrictedConn: c, in: in, done: make(chan struct{})}
}

func (s *sharedConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case p, ok := <-s.in:
		if !ok {
			return 0, netip.AddrPort{}, io.EOF
		}
		return copy(b, p.Data), p.Addr, nil
	case <-s.done:
		return 0, netip.AddrPort{}, io.EOF
	}
}

// Close stops reads only: the socket belongs to discv4.
func (s *sharedConn) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}
