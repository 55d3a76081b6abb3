package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/etcdserver/etcdtest"
	"github.com/consortium/consortium/internal/store"
	"github.com/consortium/consortium/internal/store/storetest"
)

var prefixes atomic.Int64

// newPrefix gives each store of a shared cluster its own key space.
func newPrefix(t testing.TB) string {
	return fmt.Sprintf("/test/%s/%d/", strings.ReplaceAll(t.Name(), "/", "_"), prefixes.Add(1))
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// open opens a store on endpoints under prefix, closed when the test ends.
func open(t testing.TB, endpoints []string, prefix string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Config{Endpoints: endpoints, Prefix: prefix, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The shared suite, each case on its own prefix of one cluster; reopening
// the store is a restart of the registrar.
func TestSuite(t *testing.T) {
	t.Parallel()
	c := etcdtest.StartCluster(t, 1)
	storetest.Run(t, func(t *testing.T) func() store.Store {
		prefix := newPrefix(t)
		return func() store.Store { return open(t, c.Endpoints(), prefix) }
	})
}

// Open refuses a wrong configuration at once and gives up on an endpoint
// that does not answer after DialTimeout, with errors that say which.
func TestOpenBadInput(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String() // nothing will answer there
	l.Close()
	tests := []struct {
		name    string
		cfg     Config
		want    error
		message string
	}{
		{"no endpoints", Config{}, ErrConfig, "no endpoints"},
		{"empty endpoint", Config{Endpoints: []string{""}}, ErrConfig, `endpoint ""`},
		{"no port", Config{Endpoints: []string{"127.0.0.1"}}, ErrConfig, "want host:port"},
		{"bad scheme", Config{Endpoints: []string{"ftp://127.0.0.1:2379"}}, ErrConfig, "scheme"},
		{"path", Config{Endpoints: []string{"http://127.0.0.1:2379/v3"}}, ErrConfig, "nothing more"},
		{"garbage", Config{Endpoints: []string{"http://[::1"}}, ErrConfig, "endpoint"},
		{"key without cert", Config{Endpoints: []string{"127.0.0.1:2379"}, KeyFile: "k.pem"}, ErrConfig, "certificate"},
		{"missing CA", Config{Endpoints: []string{"https://127.0.0.1:2379"}, CAFile: "/nonexistent/ca.pem"}, ErrConfig, "TLS"},
		{"unreachable", Config{Endpoints: []string{"http://" + dead}, DialTimeout: time.Second}, store.ErrUnavailable, "answered within 1s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Logger = quiet()
			start := time.Now()
			s, err := Open(context.Background(), tt.cfg)
			if err == nil {
				s.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.message) {
				t.Fatalf("err %q, want %v mentioning %q", err, tt.want, tt.message)
			}
			if d := time.Since(start); d > tt.cfg.DialTimeout+2*time.Second {
				t.Fatalf("took %s", d)
			}
			t.Log(err)
		})
	}
}
