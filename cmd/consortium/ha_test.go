package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/registrarclient"
)

// The HA commands end to end through the binary: `consortium etcd`,
// `registrar migrate` from SQLite into it, and two registrar replicas on it
// that see each other's writes.
func TestEtcdMigrateAndReplicas(t *testing.T) {
	ctx := context.Background()
	client, peer := freePort(t), freePort(t)
	startProc(t, "etcd", "--name", "e1", "--data", t.TempDir(),
		"--listen-client", "http://"+client, "--listen-peer", "http://"+peer)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + client + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("consortium etcd not healthy")
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A SQLite registrar with two members; then stopped.
	dir := t.TempDir()
	addr := freePort(t)
	p := startProc(t, "registrar", "--listen", addr, "--data", dir)
	waitReady(t, "http://"+addr, nil)
	admin := readCred(t, dir)
	ac, _ := registrarclient.New(registrarclient.Config{URL: "http://" + addr, Credential: admin})
	for _, m := range []string{"acme", "globex"} {
		if _, err := ac.AddMember(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	p.kill9()

	store := "etcd://" + client
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	if err := run(ctx, e, []string{"registrar", "migrate", "--from", "sqlite://" + dir, "--to", store}); err != nil {
		t.Fatalf("migrate: %v\n%s", err, errb.String())
	}
	if !strings.Contains(out.String(), "2 members") || !strings.Contains(out.String(), "administrator") || !strings.Contains(out.String(), "matches") {
		t.Fatalf("migrate said: %s", out.String())
	}
	// Twice: refused, the destination is not empty.
	if err := run(ctx, e, []string{"registrar", "migrate", "--from", "sqlite://" + dir, "--to", store}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second migrate: %v", err)
	}

	// Two replicas on etcd: the migrated administrator works on both, and a
	// member added through one is seen through the other.
	var urls []string
	for i := 0; i < 2; i++ {
		a := freePort(t)
		startProc(t, "registrar", "--listen", a, "--data", t.TempDir(), "--store", store)
		waitReady(t, "http://"+a, nil)
		urls = append(urls, "http://"+a)
	}
	c0, _ := registrarclient.New(registrarclient.Config{URL: urls[0], Credential: admin})
	c1, _ := registrarclient.New(registrarclient.Config{URL: urls[1], Credential: admin})
	if _, err := c0.AddMember(ctx, "initech"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for {
		ms, err := c1.Members(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica 2 has %d members, want 3 (acme, globex migrated; initech added on replica 1)", len(ms))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestHAUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"registrar", "--store", "postgres://db:5432", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, "unknown scheme"},
		{[]string{"registrar", "--store", "etcd://nohost", "--listen", "127.0.0.1:0", "--data", t.TempDir()}, "not host:port"},
		{[]string{"registrar", "migrate", "--from", "sqlite:///x"}, "--to"},
		{[]string{"registrar", "migrate", "--from", "sqlite://" + t.TempDir(), "--to", "sqlite://x", "extra"}, "unexpected argument"},
		{[]string{"etcd", "--data", t.TempDir()}, "--name"},
		{[]string{"etcd", "--name", "e1", "--data", t.TempDir(), "--initial-cluster-state", "maybe"}, "new or existing"},
	} {
		var out, errb bytes.Buffer
		e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		err := run(context.Background(), e, tc.args)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args, err, tc.want)
		}
	}
	// Same store on both sides.
	d := t.TempDir()
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	if err := run(context.Background(), e, []string{"registrar", "migrate", "--from", "sqlite://" + d, "--to", "sqlite://" + d}); err == nil || !strings.Contains(err.Error(), "same store") {
		t.Errorf("same store: %v", err)
	}
}
