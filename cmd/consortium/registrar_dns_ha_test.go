package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/dnstree"
	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/miekg/dns"
)

// Two registrar replicas on one etcd, given the same --dns-key, serve one
// tree: the same enrtree:// URL and the same signed root, whichever replica
// a client's resolver asks. Without the shared key each replica signs with
// a key of its own and a client's pinned URL matches only one of them.
func TestRegistrarReplicasSignOneTree(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd and two registrars")
	}
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
	keyFile := filepath.Join(t.TempDir(), "dnstree.key")
	key, _ := crypto.GenerateKey()
	if err := dnstree.WriteKey(keyFile, key); err != nil {
		t.Fatal(err)
	}
	wantURL := dnstree.URL(&key.PublicKey, "acme.nodes.example")

	type replica struct{ url, dns, data string }
	var reps []replica
	for i := 0; i < 2; i++ {
		r := replica{url: "http://" + freePort(t), dns: freePort(t), data: t.TempDir()}
		startProc(t, "registrar", "--listen", strings.TrimPrefix(r.url, "http://"), "--data", r.data,
			"--store", "etcd://"+client, "--dns-listen", r.dns, "--dns-domain", "example", "--dns-key", keyFile)
		waitReady(t, r.url, nil)
		reps = append(reps, r)
	}
	ac, _ := registrarclient.New(registrarclient.Config{URL: reps[0].url, Credential: readCred(t, reps[0].data)})
	acme, err := ac.AddMember(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := registrarclient.New(registrarclient.Config{URL: reps[0].url, Credential: acme.Credential})
	for i, ip := range []string{"10.1.0.4", "10.1.0.5"} {
		k := testutil.Key(t)
		if _, err := c.Register(ctx, httpapi.RegisterRequest{Role: "tx", ENR: testutil.ENR(t, k, uint64(i+1), ip, 30303, 30303)}); err != nil {
			t.Fatal(err)
		}
	}

	// Each replica's root for acme, over DNS, once it holds both nodes.
	root := func(addr string) string {
		m := new(dns.Msg)
		m.SetQuestion("acme.nodes.example.", dns.TypeTXT)
		in, err := dns.Exchange(m, addr)
		if err != nil || in.Rcode != dns.RcodeSuccess || len(in.Answer) != 1 {
			return ""
		}
		return strings.Join(in.Answer[0].(*dns.TXT).Txt, "")
	}
	tree := func(r replica) dnstree.TreeView {
		var v dnstree.TreeView
		req, _ := http.NewRequest("GET", r.url+"/v1/members/acme/tree", nil)
		req.Header.Set("Authorization", "Bearer "+acme.Credential)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&v)
		return v
	}
	var roots [2]string
	deadline = time.Now().Add(30 * time.Second)
	for {
		v0, v1 := tree(reps[0]), tree(reps[1])
		r0, r1 := root(reps[0].dns), root(reps[1].dns)
		if v0.Nodes == 2 && v1.Nodes == 2 && r0 != "" && r1 != "" && rootHashes(r0) == rootHashes(r1) {
			roots = [2]string{r0, r1}
			if v0.URL != wantURL || v1.URL != wantURL {
				t.Errorf("tree URLs %s and %s, want both %s (the shared key's)", v0.URL, v1.URL, wantURL)
			}
			// Every entry but the root is the same text at the same name;
			// each root verifies under the one key the URL pins.
			for name, txt := range v0.Records {
				if name != "acme.nodes.example" && v1.Records[name] != txt {
					t.Errorf("record %s: replica 1 serves %q, replica 2 %q", name, txt, v1.Records[name])
				}
			}
			for i, r := range roots {
				if err := verifyRoot(r, &key.PublicKey); err != nil {
					t.Errorf("replica %d's root %q: %v", i+1, r, err)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replicas never served one tree: nodes %d and %d, URLs %s and %s, roots %q and %q",
				v0.Nodes, v1.Nodes, v0.URL, v1.URL, r0, r1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The roots' sequence numbers come from each replica's own change
	// index (registry.Registry's, which starts at the replica's start
	// time), so they may differ; go-ethereum's client never compares them.
	t.Logf("both replicas serve %s: roots %s and %s", wantURL, roots[0], roots[1])
}

// rootHashes is the e= and l= part of an enrtree-root record: what a
// client follows, the same on every replica that holds the same records.
func rootHashes(root string) string {
	var out []string
	for _, f := range strings.Fields(root) {
		if strings.HasPrefix(f, "e=") || strings.HasPrefix(f, "l=") {
			out = append(out, f)
		}
	}
	return strings.Join(out, " ")
}

// verifyRoot checks root's signature by pub, as dnsdisc's client does: a
// keccak256 of the text before " sig=", signed in 65-byte [R || S || V]
// form, base64url without padding.
func verifyRoot(root string, pub *ecdsa.PublicKey) error {
	body, sig, ok := strings.Cut(root, " sig=")
	if !ok {
		return errors.New("no signature")
	}
	b, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || len(b) != 65 {
		return fmt.Errorf("signature %q: %v", sig, err)
	}
	if !crypto.VerifySignature(crypto.CompressPubkey(pub), crypto.Keccak256([]byte(body)), b[:64]) {
		return errors.New("not signed by the URL's key")
	}
	return nil
}
