package registrarclient

import (
	"net/http"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/registrartest"
	"github.com/consortium/consortium/internal/testutil"
)

// A member's whole life through a list whose first URL refuses
// connections: every call reaches the real registrar behind the second URL,
// and none the third; its refusals (4xx) come back as they are.
func TestFailoverToARealRegistrar(t *testing.T) {
	ctx := t.Context()
	r := registrartest.New(t, registrartest.Options{})
	url, admin := r.URL, r.Admin
	third := newReplica(t, healthy)
	urls := []string{deadURL(t), url, third.url()}
	list := strings.Join(urls, ",")

	ac, err := New(Config{URL: list, Credential: admin})
	if err != nil {
		t.Fatal(err)
	}
	if err := ac.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	acme, err := ac.AddMember(ctx, "acme") // never sent to the first: safe to send on
	if err != nil {
		t.Fatal(err)
	}
	beta, err := ac.AddMember(ctx, "beta")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ac.AddMember(ctx, "acme"); !IsStatus(err, http.StatusConflict) {
		t.Fatalf("second acme: %v", err)
	}

	mc, err := New(Config{URL: list, Credential: acme.Credential})
	if err != nil {
		t.Fatal(err)
	}
	key := testutil.Key(t)
	req := api.RegisterRequest{Role: "validator", ENR: testutil.ENR(t, key, 1, "10.1.0.1", 30303, 30303)}
	reg, err := mc.Register(ctx, req)
	if err != nil || reg.ID != testutil.ID(key) || reg.Member != "acme" || !reg.Live {
		t.Fatalf("register: %+v %v", reg, err)
	}
	if _, err := mc.Register(ctx, req); err != nil { // a repeat
		t.Fatal(err)
	}
	if _, err := mc.Renew(ctx, reg.ID, &api.Status{Client: "Geth/v1", Head: 5}); err != nil {
		t.Fatal(err)
	}
	nodes, err := mc.Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].ID != reg.ID {
		t.Fatalf("nodes: %+v %v", nodes, err)
	}
	p, err := mc.Peers(ctx, reg.ID)
	if err != nil || p.Node != reg.ID || p.ETag == "" {
		t.Fatalf("peers: %+v %v", p, err)
	}
	if again, err := mc.WatchPeers(ctx, reg.ID, 0, p.ETag, 0); err != nil || !again.NotModified {
		t.Fatalf("peers with the ETag: %+v %v", again, err)
	}
	if _, err := mc.PeersText(ctx, reg.ID, "toml"); err != nil {
		t.Fatal(err)
	}

	// Refusals are answers: not sent on to the third URL.
	bc, err := New(Config{URL: list, Credential: beta.Credential})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bc.Register(ctx, req); !IsStatus(err, http.StatusForbidden) {
		t.Fatalf("another member's node: %v", err)
	}
	wrong, err := New(Config{URL: list, Credential: "acme.wrong"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrong.Nodes(ctx); !IsStatus(err, http.StatusUnauthorized) {
		t.Fatalf("wrong credential: %v", err)
	}

	if err := mc.Remove(ctx, reg.ID); err != nil {
		t.Fatal(err)
	}
	if err := mc.Remove(ctx, reg.ID); err != nil { // DELETE again: the same answer
		t.Fatal(err)
	}
	for _, c := range []*Client{ac, mc, bc, wrong} {
		if c.URL() != url {
			t.Fatalf("current URL %s, want %s", c.URL(), url)
		}
	}
	if n := third.hits.Load(); n != 0 {
		t.Fatalf("the third URL got %d requests", n)
	}
}
