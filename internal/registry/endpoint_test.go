package registry

import (
	"context"
	"errors"
	"testing"

	"github.com/consortium/consortium/internal/testutil"
)

// A public record names the endpoint other members' nodes dial: it must
// carry a TCP port and an address they can reach, not their own host.
// Private ranges stay allowed; loopback only on a test network's registrar.
func TestPublicEndpointRules(t *testing.T) {
	p := newPop(t, "a")
	ctx := context.Background()
	try := func(pubIP string, tcp int) error {
		n := newNode(t, "a", "public")
		_, _, err := p.r.Register(ctx, Principal{Name: "a"}, Registration{
			Role: "public", ENR: testutil.ENR(t, n.key, 1, "10.0.0.1", 30303, 30303),
			PublicENR: testutil.ENR(t, n.key, 1, pubIP, tcp, 30303),
		})
		return err
	}
	for _, tc := range []struct {
		ip      string
		tcp     int
		ok, dev bool // on a production registrar, on a test network's
	}{
		{"203.0.113.7", 30303, true, true},
		{"10.0.0.9", 30303, true, true},
		{"192.168.7.7", 30303, true, true},
		{"fd12::7", 30303, true, true},
		{"203.0.113.7", 0, false, false}, // no TCP port: would be dialled at :0
		{"127.0.0.1", 30303, false, true},
		{"::1", 30303, false, true},
		{"169.254.169.254", 30303, false, false},
		{"fe80::1", 30303, false, false},
		{"255.255.255.255", 30303, false, false},
	} {
		for _, dev := range []bool{false, true} {
			p.r.cfg.AllowLoopbackEndpoints = dev
			want := tc.ok
			if dev {
				want = tc.dev
			}
			before := p.r.Index()
			err := try(tc.ip, tc.tcp)
			if (err == nil) != want {
				t.Errorf("public endpoint %s:%d (test network %v): err %v, want ok=%v", tc.ip, tc.tcp, dev, err, want)
			}
			if err != nil && (!errors.Is(err, ErrInvalid) || p.r.Index() != before) {
				t.Errorf("public endpoint %s:%d: refused with %v and index %d -> %d", tc.ip, tc.tcp, err, before, p.r.Index())
			}
		}
	}
}

// A loopback public record accepted by a test network's registrar is not
// served by one started without the flag: it stays bound, out of every
// answer, and is not renewed.
func TestStoredLoopbackPublicRecordStaysOut(t *testing.T) {
	c := newCluster(t, 1, false)
	r := c.regs[0]
	r.cfg.AllowLoopbackEndpoints = true
	c.addMember(r, "a")
	n := newNode(t, "a", "public")
	rg := Registration{Role: "public", ENR: testutil.ENR(t, n.key, 1, "127.0.0.1", 30303, 30303), PublicENR: testutil.ENR(t, n.key, 1, "127.0.0.1", 30303, 30303)}
	if _, _, err := r.Register(context.Background(), Principal{Name: "a"}, rg); err != nil {
		t.Fatal(err)
	}
	r2 := c.open(c.s.replica())
	if v, err := r2.Node(admin, n.id); err != nil || v.Live {
		t.Fatalf("after a restart without the flag: %+v %v, want bound and not live", v, err)
	}
	if _, err := r2.Renew(context.Background(), Principal{Name: "a"}, n.id, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("renewal: %v, want ErrNotFound", err)
	}
	if _, _, err := r2.Register(context.Background(), Principal{Name: "a"}, rg); !errors.Is(err, ErrInvalid) {
		t.Fatalf("registering it again: %v, want ErrInvalid", err)
	}
}

// Sequence numbers hold for every record a node has had: after public ->
// validator -> public, an older public record is refused, even though the
// validator record carries none.
func TestPublicSeqSurvivesRoleChanges(t *testing.T) {
	c := newCluster(t, 1, false)
	r := c.regs[0]
	c.addMember(r, "a")
	ctx := context.Background()
	p := Principal{Name: "a"}
	n := newNode(t, "a", "public")
	reg := func(role string, seq, pubSeq uint64) error {
		rg := Registration{Role: role, ENR: testutil.ENR(t, n.key, seq, "10.0.0.1", 30303, 30303)}
		if pubSeq != 0 {
			rg.PublicENR = testutil.ENR(t, n.key, pubSeq, "203.0.113.9", 30303, 30303)
		}
		_, _, err := r.Register(ctx, p, rg)
		return err
	}
	if err := reg("public", 1, 5); err != nil {
		t.Fatal(err)
	}
	if err := reg("validator", 2, 0); err != nil {
		t.Fatal(err)
	}
	before := r.Index()
	for _, pubSeq := range []uint64{4, 5} {
		if err := reg("public", 3, pubSeq); !errors.Is(err, ErrStaleSeq) {
			t.Fatalf("public record seq %d after seq 5 and a role change: %v, want ErrStaleSeq", pubSeq, err)
		}
	}
	if r.Index() != before {
		t.Fatal("a refused registration moved the index")
	}
	// A restart (or another replica) remembers it too.
	r2 := c.open(c.s.replica())
	if _, _, err := r2.Register(ctx, p, Registration{Role: "public", ENR: testutil.ENR(t, n.key, 3, "10.0.0.1", 30303, 30303),
		PublicENR: testutil.ENR(t, n.key, 4, "203.0.113.9", 30303, 30303)}); !errors.Is(err, ErrStaleSeq) {
		t.Fatalf("after a restart: %v, want ErrStaleSeq", err)
	}
	if err := reg("public", 3, 6); err != nil {
		t.Fatalf("a newer public record: %v", err)
	}
}
