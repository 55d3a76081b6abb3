package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/dnstree"
	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/testutil"
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
