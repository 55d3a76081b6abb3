package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/dnstree"
	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/dnsdisc"
	"github.com/miekg/dns"
)

// The registrar with --dns-listen serves a member's tree over DNS and over
// HTTP, the same records in both, and refuses another member's reader.
func TestRegistrarServesNodeTrees(t *testing.T) {
	dir := t.TempDir()
	addr, dnsAddr := freePort(t), freePort(t)
	startProc(t, "registrar", "--listen", addr, "--data", dir, "--dns-listen", dnsAddr, "--dns-domain", "example")
	url := "http://" + addr
	waitReady(t, url, nil)
	ctx := context.Background()
	ac, _ := registrarclient.New(registrarclient.Config{URL: url, Credential: readCred(t, dir)})
	acme, err := ac.AddMember(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	bank, err := ac.AddMember(ctx, "bank")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := registrarclient.New(registrarclient.Config{URL: url, Credential: acme.Credential})
	k := testutil.Key(t)
	if _, err := c.Register(ctx, httpapi.RegisterRequest{Role: "tx", ENR: testutil.ENR(t, k, 1, "10.1.0.4", 30303, 30303)}); err != nil {
		t.Fatal(err)
	}
	get := func(cred string) (int, dnstree.TreeView) {
		req, _ := http.NewRequest("GET", url+"/v1/members/acme/tree", nil)
		req.Header.Set("Authorization", "Bearer "+cred)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var v dnstree.TreeView
		json.Unmarshal(b, &v)
		return resp.StatusCode, v
	}
	var tree dnstree.TreeView
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, v := get(acme.Credential)
		if code == 200 && v.Nodes == 1 {
			tree = v
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme's tree never held its node: %d %+v", code, v)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := get(bank.Credential); code != 404 {
		t.Errorf("bank read acme's tree: %d", code)
	}
	if !strings.HasSuffix(tree.URL, "@acme.nodes.example") {
		t.Errorf("tree URL %s", tree.URL)
	}
	// The zone's root over DNS is the record the HTTP answer names.
	m := new(dns.Msg)
	m.SetQuestion("acme.nodes.example.", dns.TypeTXT)
	in, err := dns.Exchange(m, dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	if in.Rcode != dns.RcodeSuccess || len(in.Answer) != 1 {
		t.Fatalf("DNS answer %v", in)
	}
	txt := strings.Join(in.Answer[0].(*dns.TXT).Txt, "")
	if !strings.HasPrefix(txt, "enrtree-root:v1") || !containsValue(tree.Records, txt) {
		t.Errorf("root over DNS %q is not in the HTTP tree %v", txt, tree.Records)
	}
	// A name outside every zone is refused, with nothing in it.
	m.SetQuestion("example.com.", dns.TypeTXT)
	if in, err := dns.Exchange(m, dnsAddr); err != nil || in.Rcode != dns.RcodeRefused || len(in.Answer) != 0 {
		t.Errorf("outside the zones: %v %v", in, err)
	}
}

func containsValue(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

func TestDNSAllowFlag(t *testing.T) {
	nets, err := parseDNSAllow("acme=10.1.0.0/16, bank=10.2.3.4/16,acme=192.168.1.0/24")
	if err != nil || len(nets["acme"]) != 2 || nets["bank"][0].String() != "10.2.0.0/16" {
		t.Fatalf("%v %v", nets, err)
	}
	for _, bad := range []string{"acme", "=10.0.0.0/8", "acme=10.0.0.0", "acme=x"} {
		if _, err := parseDNSAllow(bad); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// `consortium init` prints each member's --discovery.dns flag, and a
// registrar given init's tree key (--dns-key) serves that very URL: the
// flag works before any node exists.
func TestInitPrintsTheFlagTheRegistrarServes(t *testing.T) {
	out := filepath.Join(t.TempDir(), "net")
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	if err := run(context.Background(), e, []string{"init", "--members", "acme,globex", "--consensus", "clique", "--out", out, "--dns-domain", "example"}); err != nil {
		t.Fatalf("init: %v\n%s", err, stderr.String())
	}
	flags := map[string]string{}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if _, u, ok := strings.Cut(line, "--discovery.dns "); ok {
			_, pub, err := dnsdisc.ParseURL(u)
			if err != nil || pub == nil {
				t.Fatalf("init printed %q: %v", line, err)
			}
			flags[u[strings.Index(u, "@")+1:]] = u
		}
	}
	if len(flags) != 2 || flags["acme.nodes.example"] == "" || flags["globex.nodes.example"] == "" {
		t.Fatalf("init printed these --discovery.dns flags: %v\n%s", flags, stdout.String())
	}

	dir := t.TempDir()
	addr, dnsAddr := freePort(t), freePort(t)
	startProc(t, "registrar", "--listen", addr, "--data", dir, "--seed", filepath.Join(out, "registrar", "seed.json"),
		"--dns-listen", dnsAddr, "--dns-domain", "example", "--dns-key", filepath.Join(out, "registrar", "dnstree.key"))
	waitReady(t, "http://"+addr, nil)
	cred, err := os.ReadFile(filepath.Join(out, "members", "acme", "credential"))
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/v1/members/acme/tree", nil)
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(cred)))
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var v dnstree.TreeView
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if resp.StatusCode == 200 {
			if v.URL != flags["acme.nodes.example"] {
				t.Fatalf("the registrar signs acme's tree as %s; init printed %s", v.URL, flags["acme.nodes.example"])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("acme's tree: %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A --dns-key that does not exist is refused, not replaced by a new key.
	var errb bytes.Buffer
	e = &env{stdout: io.Discard, stderr: &errb, getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err = run(ctx, e, []string{"registrar", "--listen", freePort(t), "--data", t.TempDir(), "--dns-listen", freePort(t), "--dns-key", filepath.Join(dir, "nope.key")})
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "nope.key") {
		t.Errorf("a missing --dns-key: %v", err)
	}
}

// --dns-key names a key every replica shares: it is loaded, never made; a
// missing one is a usage error naming the file. Without it the data
// directory's key is made once and kept.
func TestTreeKeyFlag(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := t.TempDir()
	file := filepath.Join(dir, "shared.key")
	if _, err := treeKey(log, t.TempDir(), file); !errors.Is(err, errUsage) || !strings.Contains(err.Error(), file) {
		t.Fatalf("missing --dns-key: %v", err)
	}
	if _, err := os.Stat(file); err == nil {
		t.Fatal("a missing --dns-key was created: replicas would each sign with their own")
	}
	want, _ := crypto.GenerateKey()
	if err := dnstree.WriteKey(file, want); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ { // two replicas, two data directories
		got, err := treeKey(log, t.TempDir(), file)
		if err != nil || !got.Equal(want) {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	data := t.TempDir()
	a, err := treeKey(log, data, "")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := treeKey(log, data, ""); err != nil || !a.Equal(b) {
		t.Fatalf("the data directory's key changed: %v", err)
	}
}
