package registry

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/consortium/consortium/internal/store"
	"github.com/consortium/consortium/internal/testutil"
)

// The registry keeps per node what answers need (record text, seq, enode
// URLs), not the decoded records: at 10,000 nodes the decoded enode.Node
// objects were the largest part of the live heap (issue 19).
func TestNodeMemoryPerRecord(t *testing.T) {
	const n = 500
	sns := make([]store.Node, n)
	for i := range sns {
		k := testutil.Key(t)
		sns[i] = store.Node{ID: testutil.ID(k), Member: "m", Role: "tx", ENR: testutil.ENR(t, k, 1, fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), 30303, 30303)}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	nodes := make([]*node, n)
	for i, sn := range sns {
		nd, err := nodeFromStore(sn)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / n
	runtime.KeepAlive(nodes)
	t.Logf("%d bytes of heap per node", per)
	if per > 800 {
		t.Fatalf("%d bytes of heap per node; want at most 800 (the record text, the enode URL and the node's fields)", per)
	}
}
