package agent_test

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/registrartest"
	"github.com/consortium/consortium/internal/registry"
)

// testRegistrar is the shared in-process registrar (registrartest); it can
// be stopped and started again on the same address and data directory,
// like a registrar process.
type testRegistrar struct {
	*registrartest.Registrar
	t testing.TB
}

// startRegistrar runs the registrar with the devnet's loopback endpoints
// allowed and no rate limit to speak of: the agents, not the limiter, are
// under test.
func startRegistrar(t testing.TB, log *slog.Logger, ttl time.Duration) *testRegistrar {
	t.Helper()
	return &testRegistrar{t: t, Registrar: registrartest.New(t, registrartest.Options{
		Registry: registry.Config{TTL: ttl, AllowLoopbackEndpoints: true},
		API:      httpapi.Config{RateLimit: 1e6},
		Logger:   log,
	})}
}

func (r *testRegistrar) stop() {
	r.t.Helper()
	if err := r.Stop(); err != nil {
		r.t.Fatal(err)
	}
}

func (r *testRegistrar) start() {
	r.t.Helper()
	if err := r.Restart(); err != nil {
		r.t.Fatal(err)
	}
}

func (r *testRegistrar) url() string { return r.URL }

func (r *testRegistrar) addMember(name string) string {
	r.t.Helper()
	return r.AddMember(r.t, name)
}

func (r *testRegistrar) client(cred string) *registrarclient.Client {
	r.t.Helper()
	c, err := registrarclient.New(registrarclient.Config{URL: r.URL, Credential: cred})
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
