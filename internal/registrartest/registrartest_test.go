package registrartest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrartest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
)

var admin = registry.Principal{Name: "admin", Admin: true}

// get sends GET path with cred and returns the status and body.
func get(t *testing.T, r *registrartest.Registrar, path, cred string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	res, err := r.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// The registrar serves on loopback from a SQLite file in its directory, with
// a working administrator credential and members added through the API.
func TestNewServesTheAPI(t *testing.T) {
	r := registrartest.New(t, registrartest.Options{})
	host, _, err := net.SplitHostPort(r.Addr)
	if err != nil || host != "127.0.0.1" || r.URL != "http://"+r.Addr {
		t.Fatalf("addr %q, URL %q", r.Addr, r.URL)
	}
	if _, err := os.Stat(filepath.Join(r.Dir, "registrar.db")); err != nil {
		t.Fatalf("no SQLite file: %v", err)
	}
	if code, body := get(t, r, "/v1/whoami", r.Admin); code != http.StatusOK {
		t.Fatalf("whoami as the administrator: %d %s", code, body)
	}
	cred := r.AddMember(t, "acme")
	if code, body := get(t, r, "/v1/whoami", cred); code != http.StatusOK {
		t.Fatalf("whoami as acme: %d %s", code, body)
	}
	if code, _ := get(t, r, "/v1/whoami", "acme.wrong"); code != http.StatusUnauthorized {
		t.Fatalf("a wrong credential: %d", code)
	}
}

// The server is set up as the registrar's: through httpapi's Prepare, with
// the registrar's read timeout unless the test changes it.
func TestServerSetUpByPrepare(t *testing.T) {
	var hs *http.Server
	registrartest.New(t, registrartest.Options{Server: func(s *http.Server) { hs = s }})
	if hs == nil || hs.ReadTimeout != 30*time.Second || hs.MaxHeaderBytes != 16<<10 {
		t.Fatalf("server %+v", hs)
	}
	if hs.ReadHeaderTimeout != httpapi.DefaultReadHeaderTimeout || hs.IdleTimeout != httpapi.DefaultIdleTimeout || hs.ConnContext == nil {
		t.Fatalf("not set up by Prepare: header timeout %v, idle %v", hs.ReadHeaderTimeout, hs.IdleTimeout)
	}
}

// A restart keeps the address, the administrator and what was written.
func TestRestartKeepsAddressAndData(t *testing.T) {
	r := registrartest.New(t, registrartest.Options{})
	addr, adminCred := r.Addr, r.Admin
	cred := r.AddMember(t, "acme")
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(r.URL + "/healthz"); err == nil {
		t.Fatal("still serving after Stop")
	}
	if err := r.Restart(); err != nil {
		t.Fatal(err)
	}
	if r.Addr != addr || r.Admin != adminCred {
		t.Fatalf("after restart: addr %s (was %s), admin changed %v", r.Addr, addr, r.Admin != adminCred)
	}
	if code, body := get(t, r, "/v1/whoami", cred); code != http.StatusOK {
		t.Fatalf("acme after restart: %d %s", code, body)
	}
	if err := r.Restart(); err == nil {
		t.Fatal("Restart of a running registrar: no error")
	}
}

// Stop ends blocking queries instead of waiting for them.
func TestStopEndsBlockingQueries(t *testing.T) {
	r := registrartest.New(t, registrartest.Options{API: httpapi.Config{MaxWait: time.Hour}})
	cred := r.AddMember(t, "acme")
	key := testutil.Key(t)
	v, _, err := r.Registry.Register(context.Background(), registry.Principal{Name: "acme"},
		registry.Registration{Role: "tx", ENR: testutil.ENR(t, key, 1, "10.0.0.1", 30303, 30303)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/v1/nodes/%s/peers?index=%d&wait=1h", r.URL, v.ID, r.Registry.Index()), nil)
		req.Header.Set("Authorization", "Bearer "+cred)
		res, err := r.Client().Do(req)
		if err == nil {
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		done <- err
	}()
	testutil.EventuallyTrue(t, 10*time.Second, "the blocking query parked", func() bool {
		_, body := get(t, r, "/metrics", r.Admin)
		return slices.Contains(strings.Split(body, "\n"), "consortium_registrar_watchers 1")
	})
	stopped := make(chan error, 1)
	go func() { stopped <- r.Stop() }()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Stop did not return within 30 s")
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("the blocking query got an answer, want its connection closed")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the blocking query did not end within 30 s of Stop")
	}
}

// With TLS the registrar serves https and HTTP/2, and Client trusts it.
func TestTLS(t *testing.T) {
	r := registrartest.New(t, registrartest.Options{TLS: true})
	if r.URL != "https://"+r.Addr {
		t.Fatalf("URL %s", r.URL)
	}
	res, err := r.Client().Get(r.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK || res.ProtoMajor != 2 {
		t.Fatalf("status %d over %s", res.StatusCode, res.Proto)
	}
	if _, err := http.Get(r.URL + "/healthz"); err == nil {
		t.Fatal("a client that does not trust the certificate got through")
	}
}

// Mount's handlers are served beside the API, built on the registry.
func TestMount(t *testing.T) {
	var got *registry.Registry
	r := registrartest.New(t, registrartest.Options{Mount: func(reg *registry.Registry) map[string]http.Handler {
		got = reg
		return map[string]http.Handler{"/ui/": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ui") })}
	}})
	if got != r.Registry {
		t.Fatal("Mount not given the served registry")
	}
	if code, body := get(t, r, "/ui/", ""); code != http.StatusOK || body != "ui" {
		t.Fatalf("/ui/: %d %q", code, body)
	}
}

// expired reports whether the registry has announced id's lease ending.
func expired(reg *registry.Registry, id string) bool {
	for _, e := range reg.Events(admin, 0) {
		if e.Kind == registry.EventExpired && e.Node == id {
			return true
		}
	}
	return false
}

func registerShortLease(t *testing.T, r *registrartest.Registrar) registry.NodeView {
	t.Helper()
	r.AddMember(t, "acme")
	v, _, err := r.Registry.Register(context.Background(), registry.Principal{Name: "acme"},
		registry.Registration{Role: "tx", ENR: testutil.ENR(t, testutil.Key(t), 1, "10.0.0.1", 30303, 30303)})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// By default the registry's loop runs: a lease that ends is reaped.
func TestRunLoopReaps(t *testing.T) {
	r := registrartest.New(t, registrartest.Options{Registry: registry.Config{TTL: time.Second}})
	v := registerShortLease(t, r)
	testutil.EventuallyTrue(t, 20*time.Second, "the lease reaped", func() bool { return expired(r.Registry, v.ID) })
}

// Manual leaves reaping to the test.
func TestManualLeavesReapingToTheTest(t *testing.T) {
	r := registrartest.New(t, registrartest.Options{Registry: registry.Config{TTL: time.Second}, Manual: true})
	v := registerShortLease(t, r)
	testutil.Eventually(t, 20*time.Second, "the lease over", func() error {
		n, err := r.Registry.Node(admin, v.ID)
		if err != nil {
			return err
		}
		if n.Live {
			return errors.New("still live")
		}
		return nil
	})
	// A running loop reaps at the lease's end; give it ample time to show.
	time.Sleep(time.Second)
	if expired(r.Registry, v.ID) {
		t.Fatal("reaped without Reap")
	}
	r.Registry.Reap()
	if !expired(r.Registry, v.ID) {
		t.Fatal("Reap did not reap")
	}
}

// Store is the running registrar's: closed under it, the registrar is not
// ready and refuses writes. Stop still stops it; a stopped one has none.
func TestStoreClosedUnderTheRegistrar(t *testing.T) {
	r := registrartest.New(t, registrartest.Options{})
	if code, body := get(t, r, "/readyz", r.Admin); code != http.StatusOK {
		t.Fatalf("/readyz with the store open: %d %s", code, body)
	}
	if err := r.Store().Close(); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, r, "/readyz", r.Admin); code != http.StatusServiceUnavailable || !strings.Contains(body, "not_ready") {
		t.Fatalf("/readyz with the store closed: %d %s", code, body)
	}
	if _, err := r.Registry.AddMember(context.Background(), admin, "acme"); err == nil {
		t.Fatal("a member added without a store")
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("stopping with the store closed: %v", err)
	}
	if r.Store() != nil {
		t.Fatal("a stopped registrar has a store")
	}
}
