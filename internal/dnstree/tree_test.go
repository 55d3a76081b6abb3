package dnstree

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

func TestTreesRebuildOnlyOnChange(t *testing.T) {
	src := newFakeSource()
	a1, a2 := node(t, "10.1.0.1", 30303, 0), node(t, "10.1.0.2", 30303, 0)
	b1 := node(t, "10.2.0.1", 30303, 0)
	src.set("a", []*enode.Node{a1, a2})
	src.set("b", []*enode.Node{b1})
	tr := newTrees(t, src)
	if err := tr.Update(); err != nil {
		t.Fatal(err)
	}
	va, _ := tr.Tree("a")
	vb, _ := tr.Tree("b")
	if va == nil || vb == nil || va.Nodes != 2 || vb.Nodes != 1 {
		t.Fatalf("trees a=%+v b=%+v", va, vb)
	}
	if va.Seq != src.version {
		t.Errorf("first seq %d, want the source's version %d", va.Seq, src.version)
	}
	signed := tr.Signed()

	// A change elsewhere in the directory (the version moves, these
	// answers do not): nothing is re-signed, no seq moves.
	src.bump()
	if err := tr.Update(); err != nil {
		t.Fatal(err)
	}
	if got := tr.Signed(); got != signed {
		t.Errorf("an unchanged answer was re-signed: %d trees signed, want %d", got, signed)
	}
	if v, _ := tr.Tree("a"); v.Seq != va.Seq {
		t.Errorf("seq moved without a change: %d -> %d", va.Seq, v.Seq)
	}
	// The same records in another order are the same answer.
	src.set("a", []*enode.Node{a2, a1})
	tr.Update()
	if got := tr.Signed(); got != signed {
		t.Errorf("reordered records re-signed the tree")
	}

	// a's answer changes: a's tree only is re-signed, with a higher seq.
	src.set("a", []*enode.Node{a1})
	if err := tr.Update(); err != nil {
		t.Fatal(err)
	}
	va2, _ := tr.Tree("a")
	vb2, _ := tr.Tree("b")
	if va2.Seq <= va.Seq || va2.Nodes != 1 {
		t.Errorf("a after change: seq %d (was %d), %d nodes", va2.Seq, va.Seq, va2.Nodes)
	}
	if vb2.Seq != vb.Seq || tr.Signed() != signed+1 {
		t.Errorf("b re-signed (seq %d -> %d) or more than one tree signed (%d)", vb.Seq, vb2.Seq, tr.Signed()-signed)
	}

	// A member that leaves (revoked) loses its zone.
	src.set("b", nil)
	tr.Update()
	if _, err := tr.Tree("b"); !errors.Is(err, ErrNoTree) {
		t.Errorf("b after leaving: err %v, want ErrNoTree", err)
	}
}

// TestTreesSeqNeverGoesBack: a registrar restarted with a lower index
// (another replica, a clock step) still raises the seq past the last one.
func TestTreesSeqNeverGoesBack(t *testing.T) {
	src := newFakeSource()
	src.version = 5000
	src.set("a", []*enode.Node{node(t, "10.1.0.1", 30303, 0)})
	tr := newTrees(t, src)
	tr.Update()
	v1, _ := tr.Tree("a")
	src.version = 10
	src.set("a", []*enode.Node{node(t, "10.1.0.2", 30303, 0)})
	tr.Update()
	v2, _ := tr.Tree("a")
	if v2.Seq != v1.Seq+1 {
		t.Errorf("seq %d after %d with a lower version, want %d", v2.Seq, v1.Seq, v1.Seq+1)
	}
}

func TestTreesKeepTreeOnSourceError(t *testing.T) {
	src := newFakeSource()
	src.set("a", []*enode.Node{node(t, "10.1.0.1", 30303, 0)})
	tr := newTrees(t, src)
	tr.Update()
	v1, _ := tr.Tree("a")
	src.fail["a"] = errors.New("store down")
	src.set("a", []*enode.Node{})
	if err := tr.Update(); err == nil {
		t.Fatal("Update hid the source's error")
	}
	if v, err := tr.Tree("a"); err != nil || v.Seq != v1.Seq {
		t.Errorf("after a failed read: %v, %v; want the previous tree", v, err)
	}
}

func TestTreesRunFollowsChanges(t *testing.T) {
	src := newFakeSource()
	src.set("a", []*enode.Node{node(t, "10.1.0.1", 30303, 0)})
	tr := newTrees(t, src)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	defer func() { cancel(); testutil.Wait(t, stopLimit, "Run to return after cancel", done) }()

	testutil.EventuallyTrue(t, waitLimit, "a's first tree", func() bool { v, _ := tr.Tree("a"); return v != nil && v.Nodes == 1 })
	n2 := node(t, "10.1.0.2", 30303, 0)
	src.set("a", []*enode.Node{n2})
	testutil.EventuallyTrue(t, waitLimit, "a's tree with the new node", func() bool {
		v, _ := tr.Tree("a")
		return v != nil && slices.Equal(ids(nodesOf(t, tr, "a")), ids([]*enode.Node{n2}))
	})
}

func nodesOf(t testing.TB, tr *Trees, member string) []*enode.Node {
	z := tr.cur.Load().zones[member]
	if z == nil {
		return nil
	}
	return z.tree.Nodes()
}

func TestNewRefusesBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Key: testKey(t)},
		{Domain: "exa mple", Key: testKey(t)},
		{Domain: "example"},
	} {
		if _, err := New(newFakeSource(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("New(%+v): err %v, want ErrConfig", c.Domain, err)
		}
	}
}

// TestTreesRunMergesStorm: changes that come faster than MinInterval are
// signed as one tree, and the last change is always published.
func TestTreesRunMergesStorm(t *testing.T) {
	src := newFakeSource()
	src.set("a", []*enode.Node{node(t, "10.1.0.1", 30303, 0)})
	tr, err := New(src, Config{Domain: testDomain, Key: testKey(t), Logger: quiet, MinInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tr.Run(ctx); close(done) }()
	defer func() { cancel(); testutil.Wait(t, stopLimit, "Run to return after cancel", done) }()
	testutil.EventuallyTrue(t, waitLimit, "the first tree signed", func() bool { return tr.Signed() == 1 })

	var last *enode.Node
	for i := range 50 {
		last = node(t, fmt.Sprintf("10.1.1.%d", i+1), 30303, 0)
		src.set("a", []*enode.Node{last})
	}
	testutil.EventuallyTrue(t, waitLimit, "the storm's last change in the tree", func() bool { n := nodesOf(t, tr, "a"); return len(n) == 1 && n[0].ID() == last.ID() })
	if s := tr.Signed(); s > 4 {
		t.Errorf("%d trees signed for a storm of 50 changes within MinInterval", s)
	}
}
