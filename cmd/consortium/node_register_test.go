package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// node register keeps an agentless node's record, signed with the node's
// own key, registered past several leases, visible to its member only,
// and stops when told to; bad input is a usage error before anything is
// sent.
func TestNodeRegisterKeepsTheLease(t *testing.T) {
	dir := t.TempDir()
	const ttl = 3 * time.Second
	url := startInProcessRegistrar(t, dir, ttl)
	adminFile := filepath.Join(dir, AdminCredentialFile)
	creds := map[string]string{}
	for _, m := range []string{"acme", "globex"} {
		out, _, err := cliRun(nil, "member", "add", m, "--registrar", url, "--credential-file", adminFile)
		if err != nil {
			t.Fatalf("member add %s: %v", m, err)
		}
		creds[m] = strings.TrimSpace(out)
		if err := os.WriteFile(filepath.Join(dir, m+".credential"), []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	key := testutil.Key(t)
	keyFile := filepath.Join(dir, "nodekey")
	if err := crypto.SaveECDSA(keyFile, key); err != nil {
		t.Fatal(err)
	}
	id := testutil.ID(key)
	args := []string{"node", "register", "--nodekey", keyFile, "--ip", "10.0.0.9", "--port", "30311",
		"--registrar", url, "--credential-file", filepath.Join(dir, "acme.credential")}

	// Refused before anything is sent.
	for _, bad := range [][]string{
		{"--role", "public"}, {"--role", "bootnode"}, {"--role", "miner"}, {"--ip", "ten.0.0.9"}, {"--port", "0"},
		{"--nodekey", ""}, {"--ip", ""}, {"extra-argument"},
	} {
		_, _, err := cliRun(nil, append(slices.Clone(args), bad...)...)
		if !errors.Is(err, errUsage) {
			t.Errorf("node register %v: %v, want a usage error", bad, err)
		}
	}
	if _, _, err := cliRun(nil, append(slices.Clone(args), "--nodekey", filepath.Join(dir, "missing"))...); err == nil || errors.Is(err, errUsage) {
		t.Errorf("a missing node key: %v", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	var wg sync.WaitGroup
	var runErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		runErr = run(ctx, &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}, args)
	}()
	defer func() { cancel(); wg.Wait() }()

	client := func(member string) *registrarclient.Client {
		c, err := registrarclient.New(registrarclient.Config{URL: url, Credential: creds[member]})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	live := func(member string) (bool, string) {
		ns, err := client(member).Nodes(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if n.ID == id {
				return n.Live, n.Enode
			}
		}
		return false, ""
	}
	deadline := time.Now().Add(10 * time.Second)
	for ok, _ := live("acme"); !ok; ok, _ = live("acme") {
		if time.Now().After(deadline) {
			t.Fatalf("the node was not registered within 10 s; output %q %q", out.String(), errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Three leases later it is still live: the lease is renewed.
	time.Sleep(3 * ttl)
	ok, enode := live("acme")
	if !ok || !strings.HasSuffix(enode, "@10.0.0.9:30311") {
		t.Fatalf("after %v: live %v, enode %q; want live at 10.0.0.9:30311", 3*ttl, ok, enode)
	}
	// A tx node is private: another member does not see it.
	if _, e := live("globex"); e != "" {
		t.Errorf("globex sees acme's tx node: %s", e)
	}
	cancel()
	wg.Wait()
	if runErr != nil {
		t.Fatalf("node register stopped with %v", runErr)
	}
	if !strings.Contains(out.String(), fmt.Sprintf("keeping node %s", id)) {
		t.Errorf("output %q", out.String())
	}
}
