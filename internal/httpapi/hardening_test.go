package httpapi_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registry"
)

// Revoking a member ends its open blocking queries at once, with 401
// revoked: no answer computed after the revocation reaches it.
func TestRevocationEndsBlockingQueries(t *testing.T) {
	h := newHarness(t, opts{})
	a, b := consortium2(t, h)
	type result struct {
		r   resp
		dur time.Duration
	}
	done := make(chan result, 2)
	start := time.Now()
	for _, id := range []string{b.val.id, b.pub.id} {
		go func() {
			r := h.do("GET", "/v1/nodes/"+id+"/peers", b.cred, nil)
			r = h.do("GET", "/v1/nodes/"+id+"/peers?index="+r.hdr.Get("X-Consortium-Index")+"&wait=60s", b.cred, nil, "If-None-Match", r.hdr.Get("ETag"))
			done <- result{r, time.Since(start)}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	revoked := time.Now()
	h.expect(h.do("DELETE", "/v1/members/beta", h.Admin, nil), 200, "")
	for range 2 {
		res := <-done
		h.expect(res.r, 401, "revoked")
		if lag := time.Since(revoked); lag > 2*time.Second {
			t.Fatalf("a blocking query ended %v after the revocation", lag)
		}
	}
	// The other member's queries carry on.
	h.expect(h.do("GET", "/v1/nodes/"+a.val.id+"/peers", a.cred, nil), 200, "")
}

// Another member's node answers, on every route that names it, exactly as
// a node that does not exist: same status, same code, same message.
func TestNotYoursIsNotThere(t *testing.T) {
	h := newHarness(t, opts{ttl: 10 * time.Second})
	a, b := consortium2(t, h)
	lapsed := newNode(t, "tx", "10.1.0.99", "")
	h.mustRegister(a.cred, lapsed)
	h.clock.Advance(5 * time.Second)
	for _, n := range []*testNode{a.boot, a.val, a.tx, a.pub} {
		h.expect(h.do("POST", "/v1/nodes/"+n.id+"/renew", a.cred, nil), 200, "")
	}
	h.clock.Advance(6 * time.Second) // lapsed's lease is over, the others run
	const unknown = "00000000000000000000000000000000000000000000000000000000000000aa"
	routes := []struct{ method, path string }{
		{"POST", "/v1/nodes/%s/renew"},
		{"GET", "/v1/nodes/%s/peers"},
		{"GET", "/v1/nodes/%s/peers?index=1&wait=1s"},
		{"DELETE", "/v1/nodes/%s"},
		{"GET", "/v1/nodes/%s"},
	}
	norm := func(r resp, id string) string {
		return fmt.Sprint(r.status, " ", strings.ReplaceAll(string(r.body), id, "<id>"))
	}
	for _, rt := range routes {
		want := norm(h.do(rt.method, fmt.Sprintf(rt.path, unknown), b.cred, nil), unknown)
		if !strings.HasPrefix(want, "404 ") {
			t.Fatalf("%s %s on an unknown node: %s", rt.method, rt.path, want)
		}
		for _, n := range []*testNode{a.val, a.tx, a.boot, lapsed} {
			if got := norm(h.do(rt.method, fmt.Sprintf(rt.path, n.id), b.cred, nil), n.id); got != want {
				t.Errorf("%s %s on alpha's %s: %s, want %s", rt.method, rt.path, n.role, got, want)
			}
		}
	}
	// Nothing of alpha's changed.
	h.expect(h.do("POST", "/v1/nodes/"+a.val.id+"/renew", a.cred, nil), 200, "")
}

// The administrator's removal keeps a node's ID bound to its member: a
// copy of its record posted by another member is refused, and the owner
// brings the node back (with the same record, or a newer one). Only the
// administrator's explicit free releases the ID.
func TestRemovalKeepsOwnership(t *testing.T) {
	h := newHarness(t, opts{})
	a, b := consortium2(t, h)
	copyOf := func(n *testNode) httpapi.RegisterRequest {
		// What beta was shown of alpha's public node: its public record.
		v := h.do("GET", "/v1/nodes/"+n.id, b.cred, nil)
		h.expect(v, 200, "")
		var nv registry.NodeView
		v.json(t, &nv)
		return httpapi.RegisterRequest{Role: "public", ENR: nv.PublicENR, PublicENR: nv.PublicENR}
	}
	stolen := copyOf(a.pub)
	h.expect(h.do("DELETE", "/v1/nodes/"+a.pub.id, h.Admin, nil), 200, "")
	for _, cred := range []string{h.Admin, a.cred} {
		var list struct{ Nodes []registry.NodeView }
		h.do("GET", "/v1/nodes", cred, nil).json(t, &list)
		for _, v := range list.Nodes {
			if v.ID == a.pub.id {
				t.Fatalf("the removed node is still listed: %+v", v)
			}
		}
	}
	h.expect(h.do("POST", "/v1/nodes", b.cred, stolen), 403, "not_owner")
	h.expect(h.do("DELETE", "/v1/nodes/"+a.pub.id, b.cred, nil), 404, "not_found")
	// The owner's agent registers its record again: the node is back.
	h.expect(h.register(a.cred, a.pub), 200, "")
	h.expect(h.do("DELETE", "/v1/nodes/"+a.pub.id, h.Admin, nil), 200, "")
	a.pub.seq++
	h.expect(h.register(a.cred, a.pub), 200, "")
	if ps := h.peers(b.cred, b.pub.id); !contains(ps.Static, "203.0.113.1") {
		t.Fatalf("alpha's public node is not back in beta's set: %v", ps.Static)
	}
	// Only the administrator frees an ID, and only one that exists.
	h.expect(h.do("POST", "/v1/nodes/"+a.pub.id+"/free", a.cred, nil), 403, "forbidden")
	h.expect(h.do("POST", "/v1/nodes/00000000000000000000000000000000000000000000000000000000000000aa/free", h.Admin, nil), 404, "not_found")
	h.expect(h.do("POST", "/v1/nodes/"+a.pub.id+"/free", h.Admin, `{"x":1}`), 400, "bad_json")
	h.expect(h.do("POST", "/v1/nodes", b.cred, copyOf(a.pub)), 403, "not_owner")
	r := h.do("POST", "/v1/nodes/"+a.pub.id+"/free", h.Admin, nil)
	h.expect(r, 200, "")
	if string(r.body) != `{"freed":true,"id":"`+a.pub.id+`"}`+"\n" {
		t.Fatalf("free answered %s", r.body)
	}
	// Freed: the key may be registered by any member, as a first registration.
	h.expect(h.do("POST", "/v1/nodes", b.cred, stolen), 201, "")
}
