package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/testutil"
)

func TestLegacyReadEndpointsKeepTheSeedShapes(t *testing.T) {
	h := newHarness(t, opts{})
	a, b := consortium2(t, h)
	// No credential, no opt-in: refused.
	for _, p := range []string{"/", "/enodes", "/staticenodes", "/parityenodes"} {
		h.expect(h.do("GET", p, "", nil), 401, "unauthenticated")
	}
	// GET /: the member's bootnodes, one comma-separated line.
	r := h.do("GET", "/?network=alpha", a.cred, nil)
	h.expect(r, 200, "")
	if got := string(r.body); got != enodeOf(t, a.boot, a.boot.ip) {
		t.Errorf("GET / = %q", got)
	}
	// /enodes: comma-separated; /staticenodes: JSON array; /parityenodes: one per line.
	r = h.do("GET", "/enodes", a.cred, nil)
	if n := len(strings.Split(string(r.body), ",")); n != 3 {
		t.Errorf("/enodes has %d entries: %q", n, r.body)
	}
	r = h.do("GET", "/staticenodes?network=alpha", a.cred, nil)
	var arr []string
	if err := json.Unmarshal(r.body, &arr); err != nil || len(arr) != 3 {
		t.Errorf("/staticenodes = %q (%v)", r.body, err)
	}
	r = h.do("GET", "/parityenodes", a.cred, nil)
	if n := len(strings.Split(string(r.body), "\n")); n != 3 {
		t.Errorf("/parityenodes has %d lines: %q", n, r.body)
	}
	// Another member's network: only its public node, by public endpoint.
	r = h.do("GET", "/staticenodes?network=beta", a.cred, nil)
	arr = nil
	json.Unmarshal(r.body, &arr)
	if len(arr) != 1 || !strings.Contains(arr[0], "@"+b.pub.pub+":") {
		t.Errorf("alpha reading beta's network: %q", r.body)
	}
	h.expect(h.do("GET", "/enodes?network=Beta", a.cred, nil), 400, "bad_query")
	h.expect(h.do("GET", "/enodes?network=a,b", a.cred, nil), 400, "bad_query")
	h.expect(h.do("GET", "/enodes?net=beta", a.cred, nil), 400, "bad_query")
}

func TestLegacyPostIsOffByDefault(t *testing.T) {
	h := newHarness(t, opts{})
	k := testutil.Key(t)
	en := fmt.Sprintf("enode://%x@127.0.0.1:30303", pubBytesKey(k))
	h.expect(h.do("POST", "/", "", "enode="+en, "Content-Type", "application/x-www-form-urlencoded"), 403, "legacy_disabled")
}

func TestLegacyPostWhenOptedIn(t *testing.T) {
	h := newHarness(t, opts{api: httpapi.Config{LegacyOpen: true}})
	k := testutil.Key(t)
	en := fmt.Sprintf("enode://%x@127.0.0.1:30303", pubBytesKey(k))
	h.expect(h.do("POST", "/?network=rez", "", "enode="+en, "Content-Type", "application/x-www-form-urlencoded"), 200, "")
	k2 := testutil.Key(t)
	en2 := fmt.Sprintf("enode://%x@127.0.0.2:30303", pubBytesKey(k2))
	h.expect(h.do("POST", "/", "", map[string]string{"enode": en2, "network": "rez"}, "Content-Type", "application/json"), 200, "")
	r := h.do("GET", "/enodes?network=rez", "", nil)
	h.expect(r, 200, "")
	if got := strings.Split(string(r.body), ","); len(got) != 2 {
		t.Fatalf("open legacy read: %q", r.body)
	}
	// The seed's crafted POST that broke every read endpoint: a value with
	// separators, or garbage. Refused, and the reads still work.
	for _, body := range []string{
		"enode=" + en + ",enode://x@1.2.3.4:1", "enode=" + en + "%0Aenode://x@1.2.3.4:1", "enode=garbage", "enode=", `enode=enode://"@1.2.3.4:1`,
	} {
		h.expect(h.do("POST", "/?network=rez", "", body, "Content-Type", "application/x-www-form-urlencoded"), 400, "")
	}
	h.expect(h.do("POST", "/?network=Rez", "", "enode="+en, "Content-Type", "application/x-www-form-urlencoded"), 400, "")
	r = h.do("GET", "/staticenodes?network=rez", "", nil)
	var arr []string
	if err := json.Unmarshal(r.body, &arr); err != nil || len(arr) != 2 {
		t.Fatalf("reads broken after bad posts: %q", r.body)
	}
	if r.status != http.StatusOK {
		t.Fatal(r.status)
	}
}

func TestRateLimit(t *testing.T) {
	h := newHarness(t, opts{api: httpapi.Config{RateLimit: 5, Burst: 5}})
	acme := h.addMember("acme")
	beta := h.addMember("beta")
	limited := 0
	for i := 0; i < 20; i++ {
		r := h.do("GET", "/v1/nodes", acme, nil)
		if r.status == 429 {
			h.expect(r, 429, "rate_limited")
			limited++
		}
	}
	if limited < 10 {
		t.Fatalf("only %d of 20 requests limited", limited)
	}
	// Another credential has its own bucket.
	h.expect(h.do("GET", "/v1/nodes", beta, nil), 200, "")
	// Failed logins are limited per client address.
	limited = 0
	for i := 0; i < 20; i++ {
		if h.do("GET", "/v1/nodes", "nobody.xxx", nil).status == 429 {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("failed logins not limited")
	}
}

func TestHealthReadyAndMetrics(t *testing.T) {
	h := newHarness(t, opts{})
	h.expect(h.do("GET", "/healthz", "", nil), 200, "")
	h.expect(h.do("GET", "/readyz", "", nil), 200, "")
	metric := func(name string) string {
		r := h.do("GET", "/metrics", "", nil)
		for _, l := range strings.Split(string(r.body), "\n") {
			if strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
				return l
			}
		}
		return ""
	}
	if m := metric("consortium_registrar_registrations_total"); m != "consortium_registrar_registrations_total 0" {
		t.Fatalf("before: %q", m)
	}
	a, _ := consortium2(t, h)
	if m := metric("consortium_registrar_registrations_total"); m != "consortium_registrar_registrations_total 8" {
		t.Fatalf("after 8 registrations: %q", m)
	}
	h.expect(h.do("POST", "/v1/nodes/"+a.tx.id+"/renew", a.cred, nil), 200, "")
	if m := metric("consortium_registrar_renewals_total"); m != "consortium_registrar_renewals_total 1" {
		t.Fatalf("renewals: %q", m)
	}
	if m := metric(`consortium_registrar_nodes{member="alpha",role="tx",state="live"}`); !strings.HasSuffix(m, " 1") {
		t.Fatalf("nodes gauge: %q", m)
	}
	r := h.do("GET", "/metrics", "", nil)
	if strings.Contains(string(r.body), "10.1.0.") {
		t.Fatal("metrics expose a private endpoint")
	}
	// Store gone: not ready, and writes are refused with a clear error.
	h.Store().Close()
	h.expect(h.do("GET", "/readyz", "", nil), 503, "not_ready")
	h.expect(h.do("GET", "/healthz", "", nil), 200, "")
	h.expect(h.register(a.cred, newNode(t, "tx", "10.1.0.99", "")), 503, "store_unavailable")
}

// The seed-compatible reads come from a per-change cache with a strong ETag:
// the same body and tag until the member's nodes change, 304 for a reader
// that holds it, a new body and tag after a change, and a tag per shape.
func TestLegacyReadsCarryETagsAndChangeWithTheNodes(t *testing.T) {
	h := newHarness(t, opts{})
	a, _ := consortium2(t, h)
	paths := []string{"/?network=alpha", "/enodes?network=alpha", "/staticenodes?network=alpha", "/parityenodes?network=alpha"}
	tags := map[string]string{}
	for _, p := range paths {
		r := h.do("GET", p, a.cred, nil)
		h.expect(r, 200, "")
		tag := r.hdr.Get("ETag")
		if tag == "" || !strings.HasPrefix(tag, `"`) {
			t.Fatalf("%s: ETag %q", p, tag)
		}
		if r.hdr.Get("Content-Length") != fmt.Sprint(len(r.body)) {
			t.Errorf("%s: Content-Length %q for %d bytes", p, r.hdr.Get("Content-Length"), len(r.body))
		}
		tags[p] = tag
		again := h.do("GET", p, a.cred, nil)
		if again.hdr.Get("ETag") != tag || string(again.body) != string(r.body) {
			t.Fatalf("%s: a second read differs: %q %q, then %q %q", p, tag, r.body, again.hdr.Get("ETag"), again.body)
		}
		nm := h.do("GET", p, a.cred, nil, "If-None-Match", tag)
		if nm.status != http.StatusNotModified || len(nm.body) != 0 {
			t.Fatalf("%s with If-None-Match %s: %d %q, want 304", p, tag, nm.status, nm.body)
		}
	}
	if tags["/enodes?network=alpha"] == tags["/parityenodes?network=alpha"] {
		t.Error("/enodes and /parityenodes have one ETag for two bodies")
	}
	// A new tx node of alpha: /enodes changes, the stale tag gets the body.
	tx2 := newNode(t, "tx", "10.1.0.9", "")
	h.mustRegister(a.cred, tx2)
	r := h.do("GET", "/enodes?network=alpha", a.cred, nil, "If-None-Match", tags["/enodes?network=alpha"])
	h.expect(r, 200, "")
	if r.hdr.Get("ETag") == tags["/enodes?network=alpha"] || !strings.Contains(string(r.body), enodeOf(t, tx2, tx2.ip)) {
		t.Fatalf("after a registration: ETag %s (was %s), body %q", r.hdr.Get("ETag"), tags["/enodes?network=alpha"], r.body)
	}
	// Its bootnodes did not change: at the new index GET / renders the same
	// bytes again, under the same tag, so its holder still gets a 304.
	h.expect(h.do("GET", "/?network=alpha", a.cred, nil, "If-None-Match", tags["/?network=alpha"]), 304, "")
}
