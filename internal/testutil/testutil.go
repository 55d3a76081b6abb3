// Package testutil holds helpers shared by tests: signed node records, a
// settable clock and Eventually. It is imported only from _test files.
package testutil

import (
	"crypto/ecdsa"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
)

// Key makes a node key.
func Key(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ENR signs a record for key with the given endpoint; an empty ip or a zero
// port leaves that entry out.
func ENR(t testing.TB, key *ecdsa.PrivateKey, seq uint64, ip string, tcp, udp int) string {
	t.Helper()
	var r enr.Record
	r.SetSeq(seq)
	if ip != "" {
		r.Set(enr.IP(net.ParseIP(ip)))
	}
	if tcp != 0 {
		r.Set(enr.TCP(tcp))
	}
	if udp != 0 {
		r.Set(enr.UDP(udp))
	}
	if err := enode.SignV4(&r, key); err != nil {
		t.Fatal(err)
	}
	n, err := enode.New(enode.ValidSchemes, &r)
	if err != nil {
		t.Fatal(err)
	}
	return n.String()
}

// ID is the node ID of key.
func ID(key *ecdsa.PrivateKey) string { return enode.PubkeyToIDV4(&key.PublicKey).String() }

// Clock is a settable clock for lease tests.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts at a fixed instant.
func NewClock() *Clock { return &Clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

// Now reads the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
