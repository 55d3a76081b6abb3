package registrarclient

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/testutil"
)

// dnsServer is a real DNS server on 127.0.0.1 (UDP) for the tests'
// resolvers. While hang is set it reads queries and never answers, as
// Docker's DNS does when it forwards a name to resolvers it cannot reach;
// otherwise it answers every A query with 127.0.0.1 and every other query
// with no records.
type dnsServer struct {
	pc      net.PacketConn
	hang    atomic.Bool
	queries atomic.Int32
}

func newDNSServer(t *testing.T, hang bool) *dnsServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &dnsServer{pc: pc}
	s.hang.Store(hang)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil {
				continue
			}
			s.queries.Add(1)
			if s.hang.Load() {
				continue
			}
			if resp := dnsAnswer(buf[:n]); resp != nil {
				pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		testutil.Wait(t, time.Minute, "the fake DNS server's reader to stop after its socket closed", done)
	})
	return s
}

// LookupNetIP makes s a Resolver: Go's own DNS client, sending every query
// to s, a new net.Resolver for each lookup as the default Resolver does.
func (s *dnsServer) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return s.resolver().LookupNetIP(ctx, network, host)
}

// resolver is a Go resolver that sends every query to s.
func (s *dnsServer) resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", s.pc.LocalAddr().String())
	}}
}

// dnsAnswer is the answer to one query (RFC 1035, 4.1): its header and
// question, and for type A one record, 127.0.0.1. nil for a malformed query.
func dnsAnswer(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:]) != 1 {
		return nil
	}
	i := 12
	for i < len(q) && q[i] != 0 {
		i += int(q[i]) + 1
	}
	if i+5 > len(q) {
		return nil
	}
	end := i + 5 // the name's final zero, type, class
	qtype := binary.BigEndian.Uint16(q[i+1:])
	resp := append([]byte(nil), q[:end]...)
	binary.BigEndian.PutUint16(resp[2:], 0x8580) // response, authoritative, RD, RA, no error
	binary.BigEndian.PutUint16(resp[8:], 0)      // no authority records
	binary.BigEndian.PutUint16(resp[10:], 0)     // no additional records (the query's EDNS)
	if qtype != 1 {
		binary.BigEndian.PutUint16(resp[6:], 0)
		return resp
	}
	binary.BigEndian.PutUint16(resp[6:], 1)
	// the name by pointer to the question, A, IN, TTL 60 s, 4 bytes
	return append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1)
}
