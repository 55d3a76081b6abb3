package registry

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/consortium/consortium/internal/noderecord"
)

// A Principal is taken when a request is authenticated; one taken before
// its member's revocation must write nothing after it: every write that
// takes a Principal refuses it with the error Authenticate now gives, and
// the state stays as it was. On the replica that revoked and on the one
// that learnt it through the shared store alike.
func TestRevokedPrincipalWritesNothing(t *testing.T) {
	c := newCluster(t, 2, false)
	a := c.regs[0]
	cred := c.addMember(a, "acme")
	c.addMember(a, "beta")
	c.sync()
	p, err := a.Authenticate(cred.String())
	if err != nil {
		t.Fatal(err)
	}
	n, fresh := newNode(t, "acme", "tx"), newNode(t, "acme", "validator")
	c.register(a, n, 1, "10.0.0.1")
	c.sync()
	if _, err := a.RevokeMember(context.Background(), admin, "acme"); err != nil {
		t.Fatal(err)
	}
	c.sync()
	if _, err := a.Authenticate(cred.String()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("Authenticate after the revocation: %v, want %v", err, ErrRevoked)
	}
	ctx := context.Background()
	for i, r := range c.regs {
		before, index := r.Nodes(admin), r.Index()
		writes := []struct {
			name string
			do   func() error
		}{
			{"register a new node", func() error { _, _, err := r.Register(ctx, p, fresh.reg(t, 1, "10.0.0.2")); return err }},
			{"register its node again", func() error { _, _, err := r.Register(ctx, p, n.reg(t, 2, "10.0.0.3")); return err }},
			{"renew", func() error { _, err := r.Renew(ctx, p, n.id, nil); return err }},
			{"renew with a status", func() error { _, err := r.Renew(ctx, p, n.id, &Status{Client: "Geth/v1.17.0"}); return err }},
			{"remove", func() error { return r.Remove(ctx, p, n.id) }},
			{"free", func() error { return r.Free(ctx, p, n.id) }},
		}
		for _, w := range writes {
			if err := w.do(); !errors.Is(err, ErrRevoked) {
				t.Errorf("replica %d: %s with the revoked member's principal: %v, want %v", i, w.name, err, ErrRevoked)
			}
		}
		c.sync()
		if after := r.Nodes(admin); !reflect.DeepEqual(after, before) || r.Index() != index {
			t.Errorf("replica %d: the refused writes changed the state:\n%+v\nwas\n%+v", i, after, before)
		}
	}
	// An unknown name never authenticates: a Principal naming one is
	// refused as Authenticate refuses it.
	if _, _, err := a.Register(ctx, Principal{Name: "nobody"}, fresh.reg(t, 1, "10.0.0.2")); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("register with an unknown member's principal: %v, want %v", err, ErrUnauthenticated)
	}
	// Another member's writes go on.
	c.register(a, newNode(t, "beta", "tx"), 1, "10.0.0.4")
}

// A registration queued behind the revocation of its member is refused in
// its batch, not written: the revocation is checked under the writers'
// lock, where the batch is staged.
func TestRegistrationStagedAfterRevocationIsRefused(t *testing.T) {
	c := newCluster(t, 1, false)
	r := c.regs[0]
	c.addMember(r, "acme")
	n := newNode(t, "acme", "tx")
	rg := n.reg(t, 1, "10.0.0.1")
	pair, err := noderecord.Verify(rg.Role, rg.ENR, rg.PublicENR)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.RevokeMember(context.Background(), admin, "acme"); err != nil {
		t.Fatal(err)
	}
	// As Register would have queued it before the revocation.
	_, _, err = r.submit(context.Background(), &regJob{p: Principal{Name: "acme"}, pair: pair, reg: rg})
	if !errors.Is(err, ErrRevoked) {
		t.Fatalf("a batch staged after the revocation: %v, want %v", err, ErrRevoked)
	}
	if _, err := r.Node(admin, n.id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused registration is listed: %v", err)
	}
}
