package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store/sqlite"
	"github.com/consortium/consortium/internal/testutil"
)

// cliRun runs the CLI in-process with the environment vars.
func cliRun(vars map[string]string, args ...string) (string, string, error) {
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return vars[k] }}
	err := run(context.Background(), e, args)
	return out.String(), errb.String(), err
}

// startInProcessRegistrar runs a real registrar (HTTP API, registry,
// SQLite in a temporary directory) in this process on 127.0.0.1, with
// lease ttl, and writes the administrator's credential into
// dir/admin.credential.
func startInProcessRegistrar(t *testing.T, dir string, ttl time.Duration) string {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := registry.Open(ctx, st, registry.Config{Logger: quiet, TTL: ttl, AllowLoopbackEndpoints: true})
	if err != nil {
		t.Fatal(err)
	}
	admin, ok, err := reg.EnsureAdmin(ctx)
	if err != nil || !ok {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, AdminCredentialFile), []byte(admin.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(httpapi.Config{Registry: reg, Logger: quiet}))
	t.Cleanup(func() { srv.Close(); st.Close() })
	return srv.URL
}

// TestNodeCLI runs node list and node remove against a real registrar (in
// process, on SQLite): a member sees and removes its own nodes only, the
// administrator any; a lapsed record is shown as such; refusals say what
// to do.
func TestNodeCLI(t *testing.T) {
	dir := t.TempDir()
	url := startInProcessRegistrar(t, dir, 4*time.Second)
	adminFile := filepath.Join(dir, AdminCredentialFile)
	noEnv := map[string]string{}

	// Flags after the member's name (issue 20): the standard flag package
	// took them as arguments.
	credOf := map[string]string{}
	for _, m := range []string{"acme", "globex"} {
		out, _, err := cliRun(noEnv, "member", "add", m, "--registrar", url, "--credential-file", adminFile)
		if err != nil {
			t.Fatalf("member add %s: %v", m, err)
		}
		credOf[m] = strings.TrimSpace(out)
		f := filepath.Join(dir, m+".credential")
		if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	register := func(member, role, ip string, public bool) string {
		t.Helper()
		c, err := registrarclient.New(registrarclient.Config{URL: url, Credential: credOf[member]})
		if err != nil {
			t.Fatal(err)
		}
		k := testutil.Key(t)
		req := httpapi.RegisterRequest{ENR: testutil.ENR(t, k, 1, ip, 30303, 30303), Role: role,
			Status: &registry.Status{Head: 42, Peers: 3}}
		if public {
			req.PublicENR = req.ENR
		}
		if _, err := c.Register(context.Background(), req); err != nil {
			t.Fatal(err)
		}
		return testutil.ID(k)
	}
	acmeVal := register("acme", "validator", "10.0.0.5", false)
	acmePub := register("acme", "public", "127.0.0.7", true)
	globexVal := register("globex", "validator", "10.0.1.5", false)

	as := func(member string, args ...string) (string, error) {
		t.Helper()
		f := adminFile
		if member != "admin" {
			f = filepath.Join(dir, member+".credential")
		}
		out, _, err := cliRun(noEnv, append(append([]string{"node"}, args...), "--registrar", url, "--credential-file", f)...)
		return out, err
	}
	rows := func(out string) map[string]string {
		m := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			m[strings.Fields(l)[0]] = l
		}
		return m
	}
	short := func(id string) string { return id[:shortID] }

	// acme sees its own two nodes in full; globex sees its validator and
	// acme's public node, not acme's validator; the administrator all.
	out, err := as("acme", "list")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "ID ") || len(rows(out)) != 2 {
		t.Fatalf("acme's node list:\n%s", out)
	}
	if l := rows(out)[short(acmeVal)]; !strings.Contains(l, "validator") || !strings.Contains(l, "live") || !strings.Contains(l, "10.0.0.5:30303") || !strings.Contains(l, " 42 ") {
		t.Fatalf("acme's validator row: %q", l)
	}
	out, err = as("globex", "list")
	if err != nil {
		t.Fatal(err)
	}
	if r := rows(out); len(r) != 2 || r[short(globexVal)] == "" || r[short(acmePub)] == "" {
		t.Fatalf("globex's node list:\n%s", out)
	}
	out, err = as("admin", "list", "--wide")
	if err != nil {
		t.Fatal(err)
	}
	if r := rows(out); len(r) != 3 || r[acmeVal] == "" {
		t.Fatalf("the administrator's node list:\n%s", out)
	}
	out, err = as("admin", "list", "--member", "globex", "--json")
	if err != nil || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"id":"`+globexVal+`"`) {
		t.Fatalf("node list --member globex --json: %v\n%s", err, out)
	}

	// Another member's node cannot be removed, whatever it is called.
	if _, err := as("globex", "remove", acmeVal); err == nil || !strings.Contains(err.Error(), "another member's node") {
		t.Fatalf("globex removing acme's validator: %v", err)
	}
	if _, err := as("globex", "remove", acmeVal[:10]); err == nil || !strings.Contains(err.Error(), "no node listed for this credential") {
		t.Fatalf("globex removing acme's validator by prefix: %v", err)
	}
	if _, err := as("acme", "remove", "xyz"); err == nil || !errors.Is(err, errUsage) {
		t.Fatalf("node remove xyz: %v", err)
	}
	// acme removes its validator by the prefix node list shows.
	out, err = as("acme", "remove", short(acmeVal))
	if err != nil || out != "node "+acmeVal+" removed\n" {
		t.Fatalf("acme removing its validator: %v %q", err, out)
	}
	if out, _ := as("admin", "list"); rows(out)[short(acmeVal)] != "" {
		t.Fatalf("removed node still listed:\n%s", out)
	}
	// The registrar keeps a record its member removed (it binds the ID to
	// the member with its last seq); --all shows it for what it is.
	if out, _ := as("acme", "list", "--all"); !strings.Contains(rows(out)[short(acmeVal)], " removed ") {
		t.Fatalf("node list --all:\n%s", out)
	}
	// The administrator removes any node; URL and credential from the
	// environment.
	vars := map[string]string{"CONSORTIUM_REGISTRAR": url, "CONSORTIUM_CREDENTIAL": readCred(t, dir)}
	if out, _, err := cliRun(vars, "node", "remove", globexVal); err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("admin removing globex's validator: %v %q", err, out)
	}
	// A wrong credential: 401, said plainly.
	bad := map[string]string{"CONSORTIUM_REGISTRAR": url, "CONSORTIUM_CREDENTIAL": "acme.nope"}
	if _, _, err := cliRun(bad, "node", "list"); err == nil || !strings.Contains(err.Error(), "refused the credential (401)") {
		t.Fatalf("bad credential: %v", err)
	}

	// acme's public node stops renewing: after its lease it is lapsed,
	// and node list --lapsed shows it alone.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err = as("acme", "list", "--lapsed")
		if err != nil {
			t.Fatal(err)
		}
		if len(rows(out)) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme's public node not lapsed after 30 s:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if l := rows(out)[short(acmePub)]; !strings.Contains(l, "lapsed") || !strings.Contains(l, "ended") {
		t.Fatalf("lapsed row: %q", l)
	}
	if _, err := as("acme", "remove", acmePub); err != nil {
		t.Fatal(err)
	}
	if out, _ := as("acme", "list"); len(rows(out)) != 0 {
		t.Fatalf("acme's list after removing both:\n%s", out)
	}
}

func TestResolveNodeID(t *testing.T) {
	a := strings.Repeat("ab", 32)
	b := "abababab" + strings.Repeat("cd", 28)
	nodes := []registry.NodeView{{ID: a}, {ID: b}}
	for _, c := range []struct{ arg, want, err string }{
		{a, a, ""},
		{strings.ToUpper(a), a, ""},
		{"ababababab", a, ""},
		{"abababab", "", "2 nodes"},
		{"abcd", "", "at least its first 8"},
		{"zzzzzzzzzz", "", "not a node ID"},
		{"0123456789", "", "no node listed"},
	} {
		got, err := resolveNodeID(nodes, c.arg)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: %q, %v; want %q, %q", c.arg, got, err, c.want, c.err)
		}
	}
}
