package bootnode

import (
	"net"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/discover"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// These tests run real discovery over UDP on 127.0.0.1. The bounds are
// generous because the machine is small and -race is slow; the times measured
// are logged.

const findTimeout = 30 * time.Second

// waitLimit bounds a wait on a socket or a table to change.
const waitLimit = 20 * time.Second

func TestClientsFindEachOther(t *testing.T) {
	t.Parallel()
	tests := []struct {
		version int
		noLive  bool
	}{
		{4, false},
		{5, false},
		{5, true}, // discv4 is about as fast either way
	}
	for _, tt := range tests {
		name := versionName(tt.version)
		if tt.noLive {
			name += " NoLivenessCheck"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			version := tt.version
			b := startBootnode(t, Config{NoLivenessCheck: tt.noLive})
			start := time.Now()
			c1 := newClient(t, version, b.Self())
			c2 := newClient(t, version, b.Self())

			found := make(chan time.Duration, 2)
			go func() { found <- c1.find(c2.id, start) }()
			go func() { found <- c2.find(c1.id, start) }()
			var slowest time.Duration
			for range 2 {
				d := <-found
				if d < 0 {
					t.Fatalf("clients did not find each other within %v", findTimeout)
				}
				slowest = max(slowest, d)
			}
			t.Logf("%s: two clients found each other via the bootnode in %v", name, slowest.Round(time.Millisecond))
		})
	}
}

// TestNetRestrictRefuses checks that a client outside NetRestrict never gets
// into the table, for either version, and that one inside does (so the
// refusal is not just a broken setup).
func TestNetRestrictRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		version     int
		netrestrict string
		listen      string // "" is 127.0.0.1:0
		wantInTable bool
	}{
		{4, "10.0.0.0/8", "", false},
		{5, "10.0.0.0/8", "", false},
		{4, "10.0.0.0/8, 127.0.0.0/8", "", true},
		{5, "10.0.0.0/8, 127.0.0.0/8", "", true},
		// A wildcard socket is dual-stack: senders arrive as ::ffff:127.0.0.1.
		// One version suffices, the filter sits below both.
		{5, "127.0.0.0/8", ":0", true},
	}
	for _, tt := range tests {
		t.Run(versionName(tt.version)+" "+tt.netrestrict+" "+tt.listen, func(t *testing.T) {
			t.Parallel()
			b := startBootnode(t, Config{NetRestrict: tt.netrestrict, ListenAddr: tt.listen})
			c := newClient(t, tt.version, b.Self())
			err := c.ping(b.Self())
			if !tt.wantInTable {
				// The ping has timed out, so the bootnode has long read it.
				if err == nil {
					t.Fatal("refused client got a pong")
				}
				if b.conn.dropped.Load() == 0 {
					t.Fatal("no packet was dropped")
				}
				if n := tableNodes(b, tt.version); len(n) != 0 {
					t.Fatalf("refused client is in the table: %v", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("allowed client's ping failed: %v", err)
			}
			if tt.listen != "" {
				// The pong proves the filter let the mapped IPv4 sender
				// through; whether discv5 then tables a sender seen as
				// ::ffff:127.0.0.1 is go-ethereum's business (it varies).
				return
			}
			testutil.EventuallyTrue(t, waitLimit, "allowed client in the table", func() bool {
				for _, n := range tableNodes(b, tt.version) {
					if n.ID() == c.id {
						return true
					}
				}
				return false
			})
		})
	}
}

// client is a bare discovery node of one version, like a geth node's.
type client struct {
	id     enode.ID
	random func() enode.Iterator
	ping   func(*enode.Node) error
}

func newClient(t *testing.T, version int, bootnode *enode.Node) *client {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	db, err := enode.OpenDB("")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	ln := enode.NewLocalNode(db, key)
	ln.SetFallbackIP(net.IPv4(127, 0, 0, 1))
	ln.SetFallbackUDP(conn.LocalAddr().(*net.UDPAddr).Port)
	cfg := discover.Config{PrivateKey: key, Bootnodes: []*enode.Node{bootnode}}
	c := &client{id: ln.ID()}
	switch version {
	case 4:
		d, err := discover.ListenV4(conn, ln, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.random = d.RandomNodes
		c.ping = func(n *enode.Node) error { _, err := d.Ping(n); return err }
		t.Cleanup(d.Close)
	default:
		d, err := discover.ListenV5(conn, ln, cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.random = d.RandomNodes
		c.ping = func(n *enode.Node) error { _, err := d.Ping(n); return err }
		t.Cleanup(func() { d.Close(); conn.Close() })
	}
	t.Cleanup(db.Close)
	return c
}

// find walks the client's random-node iterator until it meets want, and
// returns the time since start, or -1 after findTimeout.
func (c *client) find(want enode.ID, start time.Time) time.Duration {
	it := c.random()
	defer it.Close()
	stop := time.AfterFunc(findTimeout, it.Close)
	defer stop.Stop()
	for it.Next() {
		if it.Node().ID() == want {
			return time.Since(start)
		}
	}
	return -1
}

func startBootnode(t *testing.T, cfg Config) *Bootnode {
	t.Helper()
	if cfg.ListenAddr == "" {
		cfg.ListenAddr = "127.0.0.1:0"
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	if err := b.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	return b
}

func tableNodes(b *Bootnode, version int) []*enode.Node {
	if version == 5 {
		return b.v5.AllNodes()
	}
	var nodes []*enode.Node
	for _, bucket := range b.v4.TableBuckets() {
		for _, n := range bucket {
			nodes = append(nodes, n.Node)
		}
	}
	return nodes
}

func versionName(v int) string {
	if v == 5 {
		return "discv5"
	}
	return "discv4"
}
