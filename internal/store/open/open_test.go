package open

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/etcdserver/etcdtest"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Target
		err  string
	}{
		{in: "sqlite:///var/lib/c", want: Target{Kind: SQLite, Path: "/var/lib/c"}},
		{in: "data", want: Target{Kind: SQLite, Path: "data"}},
		{in: "etcd://e1:2379,e2:2379", want: Target{Kind: Etcd, Endpoints: []string{"http://e1:2379", "http://e2:2379"}}},
		{in: "etcds://10.0.0.1:2379/", want: Target{Kind: Etcd, Endpoints: []string{"https://10.0.0.1:2379"}}},
		{in: "", err: "empty"},
		{in: "sqlite://", err: "no path"},
		{in: "etcd://", err: "no endpoints"},
		{in: "etcd://e1", err: "not host:port"},
		{in: "etcd://e1:2379,,e2:2379", err: "not host:port"},
		{in: "etcd://user@e1:2379", err: "not host:port"},
		{in: "etcd://e1:2379/prefix", err: "not host:port"},
		{in: "postgres://db:5432", err: "unknown scheme"},
	} {
		got, err := Parse(tc.in)
		if tc.err != "" {
			if !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("Parse(%q) = %v, want error with %q", tc.in, err, tc.err)
			}
			continue
		}
		if err == nil && got.String() != strings.TrimSuffix(tc.in, "/") && got.Kind == Etcd {
			t.Errorf("Parse(%q).String() = %q", tc.in, got.String())
		}
		if err != nil || got.Kind != tc.want.Kind || got.Path != tc.want.Path || strings.Join(got.Endpoints, " ") != strings.Join(tc.want.Endpoints, " ") {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestOpenBoth(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, tg, err := Open(ctx, "sqlite://"+dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetAdminHash(ctx, "h"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if tg.String() != "sqlite://"+dir {
		t.Errorf("target %s", tg)
	}
	// The same database named by its file.
	s, _, err = Open(ctx, "sqlite://"+filepath.Join(dir, "registrar.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Load(ctx)
	s.Close()
	if err != nil || st.AdminHash != "h" {
		t.Fatalf("file URL opened another database: %+v %v", st, err)
	}

	cl := etcdtest.StartCluster(t, 1)
	u := "etcd://" + strings.TrimPrefix(cl.Endpoints()[0], "http://")
	s, tg, err = Open(ctx, u, Options{Prefix: "/open-test/"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if tg.Kind != Etcd || s.Ping(ctx) != nil {
		t.Fatalf("etcd store: %+v", tg)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"sqlite:///x", "etcd://a:1,b:2", "etcds://a:1", "", "etcd://", "x://y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("error not ErrBadURL: %v", err)
			}
			return
		}
		switch tg.Kind {
		case SQLite:
			if tg.Path == "" {
				t.Fatal("empty path accepted")
			}
		case Etcd:
			if len(tg.Endpoints) == 0 {
				t.Fatal("no endpoints accepted")
			}
			for _, e := range tg.Endpoints {
				if !strings.HasPrefix(e, "http://") && !strings.HasPrefix(e, "https://") {
					t.Fatalf("endpoint %q", e)
				}
			}
		default:
			t.Fatalf("kind %q", tg.Kind)
		}
	})
}
