package agent_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store/sqlite"
)

// testRegistrar can be stopped and started again on the same address and
// data directory, like a registrar process.
type testRegistrar struct {
	t      testing.TB
	ttl    time.Duration
	dir    string
	addr   string
	admin  string
	log    *slog.Logger
	srv    *http.Server
	st     *sqlite.Store
	reg    *registry.Registry
	cancel context.CancelFunc
	done   chan struct{}
}

func startRegistrar(t testing.TB, log *slog.Logger, ttl time.Duration) *testRegistrar {
	r := &testRegistrar{t: t, ttl: ttl, dir: t.TempDir(), addr: "127.0.0.1:0", log: log}
	r.start()
	t.Cleanup(r.stop)
	return r
}

func (r *testRegistrar) start() {
	r.t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	reg, err := registry.Open(ctx, st, registry.Config{TTL: r.ttl, Logger: r.log, AllowLoopbackEndpoints: true})
	if err != nil {
		r.t.Fatal(err)
	}
	if cred, ok, err := reg.EnsureAdmin(ctx); err != nil {
		r.t.Fatal(err)
	} else if ok {
		r.admin = cred.String()
	}
	var ln net.Listener
	for i := 0; ; i++ {
		ln, err = net.Listen("tcp", r.addr)
		if err == nil {
			break
		}
		if i > 50 {
			r.t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.addr = ln.Addr().String()
	rctx, cancel := context.WithCancel(ctx)
	r.st, r.reg, r.cancel, r.done = st, reg, cancel, make(chan struct{})
	go func() { defer close(r.done); reg.Run(rctx) }()
	r.srv = &http.Server{Handler: httpapi.New(httpapi.Config{Registry: reg, Logger: r.log, RateLimit: 1e6})}
	go r.srv.Serve(ln)
}

func (r *testRegistrar) stop() {
	if r.srv == nil {
		return
	}
	r.srv.Close()
	r.cancel()
	<-r.done
	r.st.Close()
	r.srv = nil
}

func (r *testRegistrar) url() string { return "http://" + r.addr }

func (r *testRegistrar) addMember(name string) string {
	cred, err := r.reg.AddMember(context.Background(), registry.Principal{Name: "admin", Admin: true}, name)
	if err != nil {
		r.t.Fatal(err)
	}
	return cred.String()
}

func (r *testRegistrar) client(cred string) *registrarclient.Client {
	c, err := registrarclient.New(registrarclient.Config{URL: r.url(), Credential: cred})
	if err != nil {
		r.t.Fatal(err)
	}
	return c
}

// forwarder is a TCP relay standing in for a member's NAT/load balancer: the
// public endpoint of a public node.
func forwarder(t testing.TB, to string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer u.Close()
				go io.Copy(u, c)
				io.Copy(c, u)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}
