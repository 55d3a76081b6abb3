package etcd

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/etcdserver/etcdtest"
	"github.com/consortium/consortium/internal/store"
)

// A signed record is about 200 to 300 characters of base64.
var fakeENR = "enr:-" + strings.Repeat("x", 250)

func benchNode(id string, now time.Time) store.Node {
	return store.Node{ID: id, Member: "member", Role: "validator", ENR: fakeENR, PublicENR: fakeENR,
		Registered: now, Updated: now, Expires: now.Add(30 * time.Second), Status: []byte(`{"head":12345,"peers":7,"client":"Geth/v1.17.0"}`)}
}

// BenchmarkRenew: one write-behind flush of 100 renewals (one transaction)
// on a three-member cluster on loopback, every member fsyncing.
func BenchmarkRenew(b *testing.B) {
	c := etcdtest.StartCluster(b, 3)
	ctx := context.Background()
	s := open(b, c.Endpoints(), newPrefix(b))
	const batch = 100
	now := time.Now()
	rs := make([]store.Renewal, batch)
	for i := range rs {
		id := fmt.Sprintf("%064x", i)
		must(b, s.PutNode(ctx, benchNode(id, now)))
		rs[i] = store.Renewal{ID: id}
	}
	for _, withStatus := range []bool{false, true} {
		name := "lease"
		if withStatus {
			name = "lease+status"
		}
		b.Run(name, func(b *testing.B) {
			n := 0
			for b.Loop() {
				n++
				for i := range rs {
					rs[i].Expires = now.Add(time.Duration(n) * time.Millisecond)
					if withStatus {
						rs[i].Status = []byte(fmt.Sprintf(`{"head":%d,"peers":7,"client":"Geth/v1.17.0"}`, n))
					}
				}
				must(b, s.Renew(ctx, rs))
			}
			b.ReportMetric(float64(n*batch)/b.Elapsed().Seconds(), "renewals/s")
		})
	}
}

// BenchmarkPutNode: a registration's write (record, lease and status in one
// transaction) on a three-member cluster, one writer and many.
func BenchmarkPutNode(b *testing.B) {
	c := etcdtest.StartCluster(b, 3)
	ctx := context.Background()
	s := open(b, c.Endpoints(), newPrefix(b))
	now := time.Now()
	var seq atomic.Int64
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			must(b, s.PutNode(ctx, benchNode(fmt.Sprintf("%064x", seq.Add(1)), now)))
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.PutNode(ctx, benchNode(fmt.Sprintf("%064x", seq.Add(1)), now)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
