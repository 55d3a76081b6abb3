package etcd

import (
	"context"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/etcdserver/etcdtest"
	"github.com/consortium/consortium/internal/store"
)

// Replicas write renewals behind, so a batch can reach etcd after another
// replica's newer one, or after the node's member removed it. Renew must
// neither shorten a lease nor bring a removed node back.
func TestRenewOnlyExtendsAndNeverRevives(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := etcdtest.StartCluster(t, 1)
	prefix := newPrefix(t)
	a, b := open(t, c.Endpoints(), prefix), open(t, c.Endpoints(), prefix)
	now := time.UnixMilli(time.Now().UnixMilli())
	must(t, a.PutNode(ctx, store.Node{ID: "01", Member: "m", Role: "tx", ENR: "enr:x", Expires: now.Add(time.Minute)}))
	must(t, a.PutNode(ctx, store.Node{ID: "02", Member: "m", Role: "tx", ENR: "enr:y", Expires: now.Add(time.Minute)}))

	// b renews 01 far ahead; a's older batch arrives afterwards.
	must(t, b.Renew(ctx, []store.Renewal{{ID: "01", Expires: now.Add(10 * time.Minute)}}))
	must(t, a.Renew(ctx, []store.Renewal{{ID: "01", Expires: now.Add(2 * time.Minute), Status: []byte(`{"head":7}`)}}))

	// 02 is removed by its member (zero expiry); a stale renewal follows.
	must(t, a.PutNode(ctx, store.Node{ID: "02", Member: "m", Role: "tx", ENR: "enr:y"}))
	must(t, b.Renew(ctx, []store.Renewal{{ID: "02", Expires: now.Add(5 * time.Minute)}}))

	st, err := open(t, c.Endpoints(), prefix).Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]store.Node{}
	for _, n := range st.Nodes {
		got[n.ID] = n
	}
	if e := got["01"].Expires; !e.Equal(now.Add(10 * time.Minute)) {
		t.Errorf("lease of 01 is %v, want the later %v: an older batch shortened it", e, now.Add(10*time.Minute))
	}
	if s := string(got["01"].Status); s != `{"head":7}` {
		t.Errorf("status of 01 %q: a status report must still be stored", s)
	}
	if e := got["02"].Expires; !e.IsZero() {
		t.Errorf("removed node 02 has lease %v: a stale renewal brought it back", e)
	}
}
