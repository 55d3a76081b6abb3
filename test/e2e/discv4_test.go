//go:build e2e

package e2e

import (
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/discover/v4wire"
)

// bootnodeTable asks a discv4 node directly (one FINDNODE, after the
// PING/PONG bond it requires) which nodes it knows, and returns their IDs.
// A lookup through go-ethereum's discover package would also ask the nodes
// it learns of, so its answer could not be pinned on the bootnode; this
// asks the bootnode and nobody else.
func bootnodeTable(addr netip.AddrPort, timeout time.Duration) (map[string]bool, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return nil, err
	}
	conn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	exp := func() uint64 { return uint64(time.Now().Add(20 * time.Second).Unix()) }
	send := func(p v4wire.Packet) error {
		b, _, err := v4wire.Encode(key, p)
		if err != nil {
			return err
		}
		_, err = conn.WriteToUDPAddrPort(b, addr)
		return err
	}
	local := conn.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := send(&v4wire.Ping{Version: 4, From: v4wire.NewEndpoint(local, 0), To: v4wire.NewEndpoint(addr, 0), Expiration: exp()}); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(timeout)
	gotPong, answeredPing, askedFindnode := false, false, false
	var findAt, pongAt time.Time
	found := map[string]bool{}
	buf := make([]byte, 1280)
	for time.Now().Before(deadline) {
		// FINDNODE once bonded both ways (or when the bootnode, knowing
		// this endpoint already, does not ping back).
		if gotPong && (answeredPing || time.Since(pongAt) > time.Second) && !askedFindnode {
			var target v4wire.Pubkey
			rand.Read(target[:])
			if err := send(&v4wire.Findnode{Target: target, Expiration: exp()}); err != nil {
				return nil, err
			}
			askedFindnode, findAt = true, time.Now()
		}
		// After FINDNODE, the answer comes in one or two NEIGHBORS packets
		// at once; a quiet half second ends it.
		wait := time.Until(deadline)
		if gotPong && !askedFindnode {
			wait = min(wait, 200*time.Millisecond)
		}
		if askedFindnode {
			wait = min(wait, 500*time.Millisecond)
		}
		conn.SetReadDeadline(time.Now().Add(wait))
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if askedFindnode && time.Since(findAt) > 400*time.Millisecond {
					return found, nil
				}
				continue
			}
			return nil, err
		}
		if from.Addr().Unmap() != addr.Addr() || from.Port() != addr.Port() {
			continue
		}
		p, _, hash, err := v4wire.Decode(buf[:n])
		if err != nil {
			continue
		}
		switch p := p.(type) {
		case *v4wire.Pong:
			gotPong, pongAt = true, time.Now()
		case *v4wire.Ping:
			// The bootnode bonds back: answer, or it refuses FINDNODE.
			if err := send(&v4wire.Pong{To: v4wire.NewEndpoint(from, 0), ReplyTok: hash, Expiration: exp()}); err != nil {
				return nil, err
			}
			answeredPing = true
		case *v4wire.Neighbors:
			for _, nd := range p.Nodes {
				found[nd.ID.ID().String()] = true
			}
		}
	}
	if !askedFindnode {
		return nil, fmt.Errorf("no bond with %s within %s (pong %v, its ping %v)", addr, timeout, gotPong, answeredPing)
	}
	return found, nil
}
