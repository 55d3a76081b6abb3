package etcdserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// A single member starts, serves reads and writes on its advertised
// endpoint, and restarts with its data.
func TestStartServeRestart(t *testing.T) {
	ctx := context.Background()
	cfg := Config{
		Name:       "solo",
		DataDir:    t.TempDir(),
		ClientURLs: []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(t))},
		PeerURLs:   []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(t))},
		Logger:     slog.New(slog.DiscardHandler),
	}
	srv, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if eps := srv.ClientEndpoints(); len(eps) != 1 || eps[0] != cfg.ClientURLs[0] {
		t.Fatalf("endpoints %v", eps)
	}
	put := func(v string) {
		cli, err := clientv3.New(clientv3.Config{Endpoints: srv.ClientEndpoints(), DialTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer cli.Close()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := cli.Get(cctx, "k")
		if err != nil {
			t.Fatal(err)
		}
		if v == "second" && (len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "first") {
			t.Fatalf("data lost across restart: %v", resp.Kvs)
		}
		if _, err := cli.Put(cctx, "k", v); err != nil {
			t.Fatal(err)
		}
	}
	put("first")
	srv.Close()
	srv.Close() // idempotent

	cfg.ClusterState = "existing"
	srv, err = Start(ctx, cfg)
	if err != nil {
		t.Fatalf("restart on the same ports: %v", err)
	}
	defer srv.Close()
	put("second")
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no data dir", Config{}},
		{"bad scheme", Config{DataDir: dir, ClientURLs: []string{"tcp://127.0.0.1:1"}}},
		{"no port", Config{DataDir: dir, PeerURLs: []string{"http://127.0.0.1"}}},
		{"path", Config{DataDir: dir, ClientURLs: []string{"http://127.0.0.1:1/x"}}},
		{"unspecified advertised", Config{DataDir: dir, ClientURLs: []string{"http://0.0.0.0:2379"}}},
		{"cluster state", Config{DataDir: dir, ClusterState: "old"}},
		{"quota", Config{DataDir: dir, QuotaBytes: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Start(context.Background(), tt.cfg)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err %v, want ErrConfig", err)
			}
		})
	}
}

// A member of a new cluster whose peers never come gives up after
// StartTimeout with an error that says what to check.
func TestStartTimeout(t *testing.T) {
	p1, p2 := freePort(t), freePort(t)
	cfg := Config{
		Name:           "a",
		DataDir:        t.TempDir(),
		ClientURLs:     []string{fmt.Sprintf("http://127.0.0.1:%d", freePort(t))},
		PeerURLs:       []string{fmt.Sprintf("http://127.0.0.1:%d", p1)},
		InitialCluster: fmt.Sprintf("a=http://127.0.0.1:%d,b=http://127.0.0.1:%d", p1, p2),
		StartTimeout:   time.Second,
		Logger:         slog.New(slog.DiscardHandler),
	}
	start := time.Now()
	_, err := Start(context.Background(), cfg)
	if err == nil {
		t.Fatal("started without a quorum")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("gave up after %s", d)
	}
	t.Log(err)
}
