package registry

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/consortium/consortium/internal/testutil"
)

// Renewals with a status are checked against a summary of the other
// members' reports, not a scan of every node per renewal (issue 19: the
// scan was most of a renewal's CPU at 10,000 nodes).
func TestRenewalsDoNotScanTheNodes(t *testing.T) {
	c := newCluster(t, 1, false)
	r := c.regs[0]
	c.addMember(r, "a")
	c.addMember(r, "b")
	ctx := context.Background()
	var as []*tnode
	for i := range 20 {
		n := newNode(t, "a", "tx")
		c.register(r, n, 1, fmt.Sprintf("10.0.0.%d", i+1))
		as = append(as, n)
	}
	nb := newNode(t, "b", "tx")
	c.register(r, nb, 1, "10.0.1.1")
	c.sync()
	for i := range 500 {
		if _, err := r.Renew(ctx, Principal{Name: "a"}, as[i%len(as)].id, &Status{Head: uint64(100 + i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Renew(ctx, Principal{Name: "b"}, nb.id, &Status{Head: uint64(100 + i)}); err != nil {
			t.Fatal(err)
		}
	}
	if n := r.claims.rebuilds; n > 1 {
		t.Fatalf("1,000 renewals scanned the nodes %d times, want at most once", n)
	}
}

// The summary answers as the scan did when a report takes something back:
// a head that went down, a coinbase no longer reported, a node that lapsed.
func TestClaimSummaryFollowsTakeBacks(t *testing.T) {
	c := newCluster(t, 1, false)
	r := c.regs[0]
	c.addMember(r, "a")
	c.addMember(r, "b")
	ctx := context.Background()
	pa, pb := Principal{Name: "a"}, Principal{Name: "b"}
	na, nb := newNode(t, "a", "validator"), newNode(t, "b", "validator")
	c.register(r, na, 1, "10.0.0.1")
	c.register(r, nb, 1, "10.0.1.1")
	c.sync()
	signer := testutil.Key(t)

	// b's node reports a far head, then goes back to 100 (a resync): a's
	// claim of 100 + MaxHeadLead + 1 is compared with 100 at once.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := r.Renew(ctx, pb, nb.id, &Status{Head: 1e9})
	must(err)
	_, err = r.Renew(ctx, pa, na.id, &Status{Head: 1e9})
	must(err) // within reach of b's
	_, err = r.Renew(ctx, pb, nb.id, &Status{Head: 100})
	must(err)
	if _, err := r.Renew(ctx, pa, na.id, &Status{Head: 100 + MaxHeadLead + 1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a head far beyond b's lowered head: %v, want ErrInvalid", err)
	}

	// a proves a coinbase: b may not claim it; once a reports no coinbase,
	// b may.
	_, err = r.Renew(ctx, pa, na.id, &Status{Head: 100, Coinbase: addr(signer), CoinbaseSig: coinbaseSig(t, signer, na.id)})
	must(err)
	if _, err := r.Renew(ctx, pb, nb.id, &Status{Head: 100, Coinbase: addr(signer)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("b claims a's proven coinbase: %v, want ErrInvalid", err)
	}
	_, err = r.Renew(ctx, pa, na.id, &Status{Head: 100})
	must(err)
	if _, err := r.Renew(ctx, pb, nb.id, &Status{Head: 100, Coinbase: addr(signer)}); err != nil {
		t.Fatalf("b claims a coinbase nobody proves any more: %v", err)
	}

	// a proves it again (b's claim is unproven, so a may); when a's node
	// lapses, b may claim it again.
	_, err = r.Renew(ctx, pb, nb.id, &Status{Head: 100})
	must(err)
	_, err = r.Renew(ctx, pa, na.id, &Status{Head: 100, Coinbase: addr(signer), CoinbaseSig: coinbaseSig(t, signer, na.id)})
	must(err)
	if _, err := r.Renew(ctx, pb, nb.id, &Status{Head: 100, Coinbase: addr(signer)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("b claims a's proven coinbase again: %v, want ErrInvalid", err)
	}
	c.clock.Advance(sharedTTL / 2)
	_, err = r.Renew(ctx, pb, nb.id, &Status{Head: 100})
	must(err)
	c.clock.Advance(sharedTTL/2 + 1)
	r.Reap()
	if _, err := r.Renew(ctx, pb, nb.id, &Status{Head: 100, Coinbase: addr(signer)}); err != nil {
		t.Fatalf("b claims the coinbase of a lapsed node: %v", err)
	}
}
