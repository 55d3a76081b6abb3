package migrate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/etcdserver/etcdtest"
	"github.com/consortium/consortium/internal/store"
	"github.com/consortium/consortium/internal/store/etcd"
	"github.com/consortium/consortium/internal/store/migrate"
	"github.com/consortium/consortium/internal/store/sqlite"
	"github.com/consortium/consortium/internal/testutil"
)

// fill writes a small consortium: admin, 3 members (one revoked, one
// rotating its credential), 20 nodes
// (one removed by its member: zero expiry), 2 legacy enodes.
func fill(t *testing.T, s store.Store) {
	t.Helper()
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli()).UTC()
	must(t, s.SetAdminHash(ctx, strings.Repeat("a", 64)))
	for i, name := range []string{"acme", "globex", "initech"} {
		m := store.Member{Name: name, Hash: strings.Repeat(fmt.Sprint(i), 64), Created: now}
		if name == "initech" {
			m.Revoked, m.RevokedAt = true, now
		}
		if name == "globex" { // in a rotation's grace period, admitted by a chain vote
			m.PrevHash, m.PrevUntil, m.ChainHash = strings.Repeat("9", 64), now.Add(time.Hour), strings.Repeat("9", 64)
		}
		must(t, s.PutMember(ctx, m))
	}
	for i := 0; i < 20; i++ {
		k := testutil.Key(t)
		n := store.Node{
			ID: testutil.ID(k), Member: []string{"acme", "globex"}[i%2], Role: "tx",
			ENR:        testutil.ENR(t, k, 1, "127.0.0.1", 30303+i, 30303+i),
			Registered: now, Updated: now, Expires: now.Add(time.Minute), Status: []byte(fmt.Sprintf(`{"head":%d}`, i)),
		}
		if i == 7 {
			n.Expires = time.Time{}
		}
		must(t, s.PutNode(ctx, n))
	}
	must(t, s.PutLegacy(ctx, store.Legacy{Network: "rezchain", Enode: "enode://" + strings.Repeat("1", 128) + "@127.0.0.1:30303", Expires: now.Add(time.Minute)}))
	must(t, s.PutLegacy(ctx, store.Legacy{Network: "rezchain", Enode: "enode://" + strings.Repeat("2", 128) + "@127.0.0.1:30304", Expires: now.Add(time.Minute)}))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCopySQLiteToEtcd(t *testing.T) {
	ctx := context.Background()
	src, err := sqlite.Open(ctx, t.TempDir())
	must(t, err)
	defer src.Close()
	fill(t, src)

	cl := etcdtest.StartCluster(t, 1)
	dst, err := etcd.Open(ctx, etcd.Config{Endpoints: cl.Endpoints(), Prefix: "/migrate-test/"})
	must(t, err)
	defer dst.Close()

	rep, err := migrate.Copy(ctx, src, dst)
	must(t, err)
	if !rep.Admin || rep.Members != 3 || rep.Revoked != 1 || rep.Nodes != 20 || rep.Legacy != 2 {
		t.Fatalf("report %+v", rep)
	}
	if !strings.Contains(rep.String(), "20 node records") {
		t.Errorf("report text %q", rep)
	}
	// A second store over the same prefix (another replica) sees it all.
	other, err := etcd.Open(ctx, etcd.Config{Endpoints: cl.Endpoints(), Prefix: "/migrate-test/"})
	must(t, err)
	defer other.Close()
	a, err := src.Load(ctx)
	must(t, err)
	b, err := other.Load(ctx)
	must(t, err)
	if err := migrate.Compare(a, b); err != nil {
		t.Fatalf("etcd holds something else than the source: %v", err)
	}

	// Into a store that already holds a consortium: refused, nothing written.
	before, err := other.Load(ctx)
	must(t, err)
	if _, err := migrate.Copy(ctx, src, dst); !errors.Is(err, migrate.ErrNotEmpty) {
		t.Fatalf("copy into a full store: %v", err)
	}
	after, err := other.Load(ctx)
	must(t, err)
	if err := migrate.Compare(before, after); err != nil {
		t.Fatalf("a refused copy changed the destination: %v", err)
	}
}

func TestCopyEtcdToSQLite(t *testing.T) {
	ctx := context.Background()
	cl := etcdtest.StartCluster(t, 1)
	src, err := etcd.Open(ctx, etcd.Config{Endpoints: cl.Endpoints(), Prefix: "/back/"})
	must(t, err)
	defer src.Close()
	fill(t, src)
	dst, err := sqlite.Open(ctx, t.TempDir())
	must(t, err)
	defer dst.Close()
	if _, err := migrate.Copy(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	a, _ := src.Load(ctx)
	b, _ := dst.Load(ctx)
	if err := migrate.Compare(a, b); err != nil {
		t.Fatal(err)
	}
}

func TestCompareFindsDifferences(t *testing.T) {
	now := time.Now()
	base := func() *store.State {
		return &store.State{AdminHash: "x",
			Members: []store.Member{{Name: "a", Hash: "h", Created: now}},
			Nodes:   []store.Node{{ID: "1", Member: "a", ENR: "enr:1", Expires: now}}}
	}
	if err := migrate.Compare(base(), base()); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*store.State){
		"admin":   func(s *store.State) { s.AdminHash = "y" },
		"revoked": func(s *store.State) { s.Members[0].Revoked = true },
		"hash":    func(s *store.State) { s.Members[0].Hash = "g" },
		"expires": func(s *store.State) { s.Nodes[0].Expires = now.Add(time.Second) },
		"enr":     func(s *store.State) { s.Nodes[0].ENR = "enr:2" },
		"count":   func(s *store.State) { s.Nodes = nil },
	} {
		b := base()
		mut(b)
		if migrate.Compare(base(), b) == nil {
			t.Errorf("%s: difference not found", name)
		}
	}
}
