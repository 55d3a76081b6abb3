// Package storetest is the one test suite every store.Store implementation
// passes, so the SQLite and etcd stores are held to the same contract.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/store"
)

// Factory makes a new, empty place for data (a directory, an etcd prefix) and
// returns a function that opens a store over it; calling that function again
// after Close is a restart of the same store. Stores still open when the test
// ends are the factory's to close.
type Factory func(t *testing.T) (open func() store.Store)

// Run runs the suite.
func Run(t *testing.T, newStore Factory) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()

	t.Run("EmptyLoad", func(t *testing.T) {
		s := newStore(t)()
		st, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.AdminHash != "" || len(st.Members) != 0 || len(st.Nodes) != 0 {
			t.Fatalf("fresh store not empty: %+v", st)
		}
		if err := s.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("WriteReopenRead", func(t *testing.T) {
		open := newStore(t)
		s := open()
		must(t, s.SetAdminHash(ctx, "adminhash"))
		must(t, s.PutMember(ctx, store.Member{Name: "a", Hash: "ha", Created: now}))
		must(t, s.PutMember(ctx, store.Member{Name: "b", Hash: "hb", Created: now}))
		must(t, s.PutMember(ctx, store.Member{Name: "b", Hash: "hb", Created: now, Revoked: true, RevokedAt: now}))
		// a rotated its credential: both hashes kept, the old one until a time.
		rotated := store.Member{Name: "a", Hash: "ha2", Created: now, PrevHash: "ha", PrevUntil: now.Add(time.Hour), ChainHash: "ha"}
		must(t, s.PutMember(ctx, rotated))
		n1 := store.Node{ID: "01", Member: "a", Role: "tx", ENR: "enr:x", Registered: now, Updated: now, Expires: now.Add(time.Minute), Status: []byte(`{"head":1}`)}
		n2 := store.Node{ID: "02", Member: "a", Role: "public", ENR: "enr:y", PublicENR: "enr:z", Registered: now, Updated: now, Expires: now.Add(time.Minute), PublicSeq: 1<<40 + 7}
		n4 := store.Node{ID: "04", Member: "b", Role: "tx", ENR: "enr:v", Registered: now, Updated: now, PublicSeq: 3, AdminRemoved: true}
		n3 := store.Node{ID: "03", Member: "b", Role: "tx", ENR: "enr:w", Registered: now, Updated: now, Expires: now}
		must(t, s.PutNode(ctx, n1))
		must(t, s.PutNode(ctx, n2))
		must(t, s.PutNode(ctx, n3))
		must(t, s.PutNode(ctx, n4))
		must(t, s.DeleteNode(ctx, "03"))
		must(t, s.Renew(ctx, []store.Renewal{{ID: "01", Expires: now.Add(2 * time.Minute)}, {ID: "02", Expires: now.Add(3 * time.Minute), Status: []byte(`{"head":9}`)}, {ID: "99", Expires: now}}))
		must(t, s.PutLegacy(ctx, store.Legacy{Network: "a", Enode: "enode://1@127.0.0.1:1", Expires: now}))
		must(t, s.PutLegacy(ctx, store.Legacy{Network: "a", Enode: "enode://2@127.0.0.1:1", Expires: now}))
		must(t, s.DeleteLegacy(ctx, "a", "enode://2@127.0.0.1:1"))
		must(t, s.Close())

		s = open()
		st, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.AdminHash != "adminhash" {
			t.Errorf("admin hash %q", st.AdminHash)
		}
		if len(st.Members) != 2 || st.Members[0].Name != "a" || st.Members[1].Revoked != true || !st.Members[1].RevokedAt.Equal(now) {
			t.Errorf("members %+v", st.Members)
		}
		if len(st.Members) == 2 {
			if a := st.Members[0]; a.Hash != rotated.Hash || a.PrevHash != rotated.PrevHash || !a.PrevUntil.Equal(rotated.PrevUntil) || a.ChainHash != rotated.ChainHash {
				t.Errorf("rotated member %+v, want %+v", a, rotated)
			}
			if b := st.Members[1]; b.PrevHash != "" || !b.PrevUntil.IsZero() || b.ChainHash != "" {
				t.Errorf("member without rotation %+v", b)
			}
		}
		if len(st.Nodes) != 3 {
			t.Fatalf("nodes %+v", st.Nodes)
		}
		got := map[string]store.Node{}
		for _, n := range st.Nodes {
			got[n.ID] = n
		}
		if g := got["01"]; !g.Expires.Equal(now.Add(2*time.Minute)) || string(g.Status) != `{"head":1}` || g.Role != "tx" || g.Member != "a" {
			t.Errorf("node 01 %+v", g)
		}
		if g := got["02"]; !g.Expires.Equal(now.Add(3*time.Minute)) || string(g.Status) != `{"head":9}` || g.PublicENR != "enr:z" || g.PublicSeq != 1<<40+7 || g.AdminRemoved {
			t.Errorf("node 02 %+v", g)
		}
		if g := got["04"]; !g.Expires.IsZero() || g.PublicSeq != 3 || !g.AdminRemoved {
			t.Errorf("node 04 %+v", g)
		}
		if len(st.Legacy) != 1 || st.Legacy[0].Enode != "enode://1@127.0.0.1:1" {
			t.Errorf("legacy %+v", st.Legacy)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
