package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/store"
	"github.com/consortium/consortium/internal/store/storetest"
)

func TestSuite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func() store.Store {
		dir := t.TempDir()
		return func() store.Store {
			s, err := Open(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	})
}

func TestFileIsWALAnd0600(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o755) // an operator-made directory
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if err := s.SetAdminHash(context.Background(), "x"); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{FileName + "-wal", FileName + "-shm"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatalf("no %s: %v", f, err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
}

// The store's directory ends 0700 whatever mode it had: it holds every
// member's private endpoints.
func TestDirectoryMade0700(t *testing.T) {
	for _, mode := range []os.FileMode{0o777, 0o755, 0o750} {
		dir := t.TempDir()
		os.Chmod(dir, mode)
		s, err := Open(context.Background(), dir)
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
		fi, _ := os.Stat(dir)
		if fi.Mode().Perm() != 0o700 {
			t.Fatalf("a %04o directory is %v after Open", mode, fi.Mode().Perm())
		}
	}
}

// A database an earlier version made (without public_seq and admin_removed)
// gets the columns and keeps its rows.
func TestOlderDatabaseGetsNewColumns(t *testing.T) {
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE nodes (id TEXT PRIMARY KEY, member TEXT NOT NULL, role TEXT NOT NULL, enr TEXT NOT NULL,
  public_enr TEXT NOT NULL DEFAULT '', registered INTEGER NOT NULL, updated INTEGER NOT NULL,
  expires INTEGER NOT NULL, status BLOB)`,
		`INSERT INTO nodes VALUES('01', 'a', 'tx', 'enr:x', '', 1, 2, 3, NULL)`,
		`CREATE TABLE members (name TEXT PRIMARY KEY, hash TEXT NOT NULL, created INTEGER NOT NULL,
  revoked INTEGER NOT NULL DEFAULT 0, revoked_at INTEGER NOT NULL DEFAULT 0)`,
		`INSERT INTO members VALUES('a', 'ha', 1, 0, 0)`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.Load(context.Background())
	if err != nil || len(st.Nodes) != 1 || st.Nodes[0].ID != "01" || st.Nodes[0].PublicSeq != 0 || st.Nodes[0].AdminRemoved {
		t.Fatalf("after the upgrade: %+v %v", st, err)
	}
	if len(st.Members) != 1 || st.Members[0].Hash != "ha" || st.Members[0].PrevHash != "" || st.Members[0].ChainHash != "" {
		t.Fatalf("member after the upgrade: %+v", st.Members)
	}
	if err := s.PutNode(context.Background(), store.Node{ID: "01", Member: "a", Role: "tx", ENR: "enr:x", PublicSeq: 9, AdminRemoved: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutMember(context.Background(), store.Member{Name: "a", Hash: "hb", PrevHash: "ha", PrevUntil: time.UnixMilli(5), ChainHash: "ha"}); err != nil {
		t.Fatal(err)
	}
}

func TestAliveSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := s.Load(ctx); !st.Alive.IsZero() {
		t.Fatalf("a new store is alive at %v", st.Alive)
	}
	at := time.UnixMilli(1767225600123).UTC()
	if err := s.SetAlive(ctx, at); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if st, err := s.Load(ctx); err != nil || !st.Alive.Equal(at) {
		t.Fatalf("alive %v (%v), want %v", st.Alive, err, at)
	}
}
