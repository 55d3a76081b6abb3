package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
)

func TestRegisterVerifiesSignatureAndBindsOwner(t *testing.T) {
	h := newHarness(t, opts{})
	acme, beta := h.addMember("acme"), h.addMember("beta")
	n := newNode(t, "validator", "10.1.0.1", "")
	r := h.register(acme, n)
	h.expect(r, 201, "")
	var v httpapi.RegisterResponse
	r.json(t, &v)
	if v.ID != n.id || v.Member != "acme" || v.Role != "validator" || !v.Live || v.TTLSeconds <= 0 {
		t.Fatalf("response %+v", v)
	}
	// Same record again: a repeat, accepted (200), nothing changes.
	h.expect(h.register(acme, n), 200, "")

	// Another member cannot change, renew, read peers of or remove it, even with a valid newer record.
	n.seq = 2
	h.expect(h.register(beta, n), 403, "not_owner")
	// (Renewing, reading or removing it answers as for an unknown node.)
	h.expect(h.do("POST", "/v1/nodes/"+n.id+"/renew", beta, nil), 404, "not_found")
	h.expect(h.do("GET", "/v1/nodes/"+n.id+"/peers", beta, nil), 404, "not_found")
	h.expect(h.do("DELETE", "/v1/nodes/"+n.id, beta, nil), 404, "not_found")
	// The administrator owns no nodes.
	h.expect(h.register(h.Admin, n), 403, "forbidden")
	// The owner can.
	h.expect(h.register(acme, n), 200, "")
	h.expect(h.do("POST", "/v1/nodes/"+n.id+"/renew", acme, nil), 200, "")
}

func TestSequenceNumberMustGrow(t *testing.T) {
	h := newHarness(t, opts{})
	acme := h.addMember("acme")
	n := newNode(t, "tx", "10.1.0.1", "")
	n.seq = 5
	h.mustRegister(acme, n)
	stale := n.request(t)
	n.seq = 4
	h.expect(h.register(acme, n), 409, "stale_seq")
	// Same seq, other content: refused.
	n.seq, n.ip = 5, "10.1.0.2"
	h.expect(h.register(acme, n), 409, "stale_seq")
	// Same seq, other role: refused.
	n.ip, n.role = "10.1.0.1", "validator"
	h.expect(h.register(acme, n), 409, "stale_seq")
	// Higher seq: accepted, and the endpoint moves.
	n.seq, n.ip, n.role = 6, "10.1.0.9", "tx"
	h.expect(h.register(acme, n), 200, "")
	// Replaying the old record is refused, and the stored record is untouched.
	h.expect(h.do("POST", "/v1/nodes", acme, stale), 409, "stale_seq")
	r := h.do("GET", "/v1/nodes/"+n.id, acme, nil)
	if !bytes.Contains(r.body, []byte("10.1.0.9")) {
		t.Fatalf("record changed by a refused request: %s", r.body)
	}
}

func TestBadNodeInput(t *testing.T) {
	h := newHarness(t, opts{})
	acme := h.addMember("acme")
	good := newNode(t, "validator", "10.1.0.1", "")
	req := good.request(t)
	other := testutil.Key(t)
	tampered := []byte(req.ENR)
	tampered[len(tampered)-2] ^= 0x1
	pubNode := newNode(t, "public", "10.1.0.2", "203.0.113.2")
	pubReq := pubNode.request(t)
	pubReq.PublicENR = testutil.ENR(t, other, 1, "203.0.113.3", 30303, 30303)
	for _, tc := range []struct {
		name   string
		body   any
		status int
	}{
		{"empty", "", 400},
		{"not json", "enr=x", 400},
		{"unknown field", `{"enr":"` + req.ENR + `","role":"validator","owner":"beta"}`, 400},
		{"trailing", `{"enr":"` + req.ENR + `","role":"validator"}{}`, 400},
		{"missing role", map[string]string{"enr": req.ENR}, 400},
		{"bad role", map[string]string{"enr": req.ENR, "role": "miner"}, 400},
		{"odd-case role", map[string]string{"enr": req.ENR, "role": "VALIDATOR"}, 400},
		{"enode not enr", map[string]string{"enr": "enode://" + strings.Repeat("a", 128) + "@10.0.0.1:30303", "role": "tx"}, 400},
		{"malformed enr", map[string]string{"enr": "enr:-xyz", "role": "tx"}, 400},
		{"bad signature", map[string]string{"enr": string(tampered), "role": "validator"}, 400},
		{"public record of another key", pubReq, 400},
		{"too large", `{"enr":"` + strings.Repeat("a", 70<<10) + `"}`, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.expect(h.do("POST", "/v1/nodes", acme, tc.body), tc.status, "")
		})
	}
	// IDs in paths: separators, odd case, wrong length.
	for _, id := range []string{strings.ToUpper(good.id), good.id[:63], good.id + ",x", good.id[:62] + "%0A", good.id + "0", "x"} {
		h.expect(h.do("POST", "/v1/nodes/"+id+"/renew", acme, nil), 400, "invalid")
		h.expect(h.do("GET", "/v1/nodes/"+id+"/peers", acme, nil), 400, "invalid")
	}
	// Bad renewal bodies.
	h.mustRegister(acme, good)
	h.expect(h.do("POST", "/v1/nodes/"+good.id+"/renew", acme, `{"status":{"head":1,"extra":2}}`), 400, "")
	h.expect(h.do("POST", "/v1/nodes/"+good.id+"/renew", acme, `{"status":{"peers":-1}}`), 400, "")
	h.expect(h.do("POST", "/v1/nodes/"+good.id+"/renew", acme, `{"status":{"peer_ids":["x"]}}`), 400, "")
	// Bad query parameters.
	for _, q := range []string{"format=xml", "index=-1", "wait=forever", "index=1&index=2", "foo=bar"} {
		h.expect(h.do("GET", "/v1/nodes/"+good.id+"/peers?"+q, acme, nil), 400, "bad_query")
	}
	// Nothing refused was stored.
	r := h.do("GET", "/v1/nodes", acme, nil)
	var list struct{ Nodes []registry.NodeView }
	r.json(t, &list)
	if len(list.Nodes) != 1 {
		t.Fatalf("refused input changed state: %s", r.body)
	}
	h.expect(h.do("GET", "/nope", acme, nil), 404, "no_route")
	h.expect(h.do("PUT", "/v1/nodes", acme, nil), 404, "no_route")
}

// consortium2 registers two members with a bootnode, validator, tx and
// public node each, on distinct address ranges.
type member2 struct {
	cred                    string
	boot, val, tx, pub      *testNode
	privateIP, publicPrefix string
}

func consortium2(t *testing.T, h *harness) (a, b *member2) {
	mk := func(name string, n int) *member2 {
		m := &member2{cred: h.addMember(name)}
		p := fmt.Sprintf("10.%d.0.", n)
		m.privateIP = p
		m.boot = newNode(t, "bootnode", p+"1", "")
		m.val = newNode(t, "validator", p+"2", "")
		m.tx = newNode(t, "tx", p+"3", "")
		m.pub = newNode(t, "public", p+"4", fmt.Sprintf("203.0.113.%d", n))
		for _, nd := range []*testNode{m.boot, m.val, m.tx, m.pub} {
			h.mustRegister(m.cred, nd)
		}
		return m
	}
	return mk("alpha", 1), mk("beta", 2)
}

func enodeOf(t *testing.T, n *testNode, ip string) string {
	if n.role == "bootnode" {
		return fmt.Sprintf("enode://%x@%s:0?discport=%d", pubBytes(n), ip, n.port)
	}
	return fmt.Sprintf("enode://%x@%s:%d", pubBytes(n), ip, n.port)
}

func TestPeerPolicy(t *testing.T) {
	h := newHarness(t, opts{})
	a, b := consortium2(t, h)
	sorted := func(s ...string) []string { sort.Strings(s); return s }
	check := func(name string, got, want []string) {
		t.Helper()
		g := append([]string(nil), got...)
		sort.Strings(g)
		if strings.Join(g, " ") != strings.Join(want, " ") {
			t.Errorf("%s:\n got  %v\n want %v", name, g, want)
		}
	}
	// A validator: its member's other nodes by private endpoint, its member's bootnode.
	ps := h.peers(a.cred, a.val.id)
	check("alpha validator static", ps.Static, sorted(enodeOf(t, a.tx, a.tx.ip), enodeOf(t, a.pub, a.pub.ip)))
	check("alpha validator bootnodes", ps.Bootnodes, sorted(enodeOf(t, a.boot, a.boot.ip)))
	if r := h.do("GET", "/v1/nodes/"+a.val.id+"/peers?format=enr", a.cred, nil); len(strings.Fields(string(r.body))) != len(ps.Static) {
		t.Errorf("enr lines %q for %d static peers", r.body, len(ps.Static))
	}
	// A public node: also the other member's public node, by public endpoint only.
	ps = h.peers(a.cred, a.pub.id)
	check("alpha public static", ps.Static, sorted(enodeOf(t, a.val, a.val.ip), enodeOf(t, a.tx, a.tx.ip), enodeOf(t, b.pub, b.pub.pub)))
	// A bootnode has no devp2p peers.
	ps = h.peers(a.cred, a.boot.id)
	check("alpha bootnode static", ps.Static, nil)

	// No answer alpha can read holds any of beta's private endpoints.
	for _, path := range []string{
		"/v1/nodes", "/v1/nodes/" + a.pub.id + "/peers", "/v1/nodes/" + a.pub.id + "/peers?format=toml",
		"/v1/nodes/" + a.pub.id + "/peers?format=enr", "/v1/nodes/" + a.val.id + "/peers?format=bootnodes",
		"/v1/nodes/" + b.pub.id, "/v1/events", "/", "/enodes", "/staticenodes", "/parityenodes",
		"/enodes?network=beta", "/staticenodes?network=beta", "/?network=beta",
	} {
		r := h.do("GET", path, a.cred, nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		if bytes.Contains(r.body, []byte(b.privateIP)) || bytes.Contains(r.body, []byte(b.val.id)) || bytes.Contains(r.body, []byte(b.tx.id)) {
			t.Errorf("%s leaks beta's private nodes: %s", path, r.body)
		}
		// The ENR form hides the IP in base64: decode it.
		if strings.Contains(path, "format=enr") {
			for _, line := range strings.Fields(string(r.body)) {
				if strings.Contains(enrIP(t, line), b.privateIP) {
					t.Errorf("ENR answer carries beta's private endpoint")
				}
			}
		}
	}
	// Beta's public node is listed to alpha without its private endpoint.
	r := h.do("GET", "/v1/nodes/"+b.pub.id, a.cred, nil)
	var v registry.NodeView
	r.json(t, &v)
	if v.Enode != "" || v.ENR != "" || !strings.Contains(v.PublicEnode, b.pub.pub) {
		t.Errorf("beta's public node as alpha sees it: %+v", v)
	}
	// Beta's private nodes are not found for alpha.
	h.expect(h.do("GET", "/v1/nodes/"+b.val.id, a.cred, nil), 404, "not_found")
}

func TestPeerSetFormatsAndETag(t *testing.T) {
	h := newHarness(t, opts{})
	a, _ := consortium2(t, h)
	path := "/v1/nodes/" + a.pub.id + "/peers"
	js := h.peers(a.cred, a.pub.id)

	r := h.do("GET", path+"?format=bootnodes", a.cred, nil)
	h.expect(r, 200, "")
	if got := strings.TrimSpace(string(r.body)); got != strings.Join(js.Bootnodes, ",") || got == "" {
		t.Errorf("bootnodes line %q", got)
	}
	r = h.do("GET", path+"?format=toml", a.cred, nil)
	h.expect(r, 200, "")
	var cfg struct {
		Node struct {
			P2P struct{ StaticNodes, TrustedNodes, BootstrapNodes, BootstrapNodesV5 []string }
		}
	}
	if _, err := toml.Decode(string(r.body), &cfg); err != nil {
		t.Fatalf("toml: %v\n%s", err, r.body)
	}
	p2p := cfg.Node.P2P
	if len(p2p.StaticNodes) != 3 || !slices.Equal(p2p.TrustedNodes, p2p.StaticNodes) || len(p2p.BootstrapNodes) != 1 {
		t.Errorf("toml fragment %+v", p2p)
	}
	// Without BootstrapNodesV5 geth's discv5 would use the mainnet bootnodes.
	if !slices.Equal(p2p.BootstrapNodesV5, p2p.BootstrapNodes) {
		t.Errorf("toml fragment: BootstrapNodesV5 %q, want the bootnodes %q", p2p.BootstrapNodesV5, p2p.BootstrapNodes)
	}
	r = h.do("GET", path+"?format=enr", a.cred, nil)
	h.expect(r, 200, "")
	if lines := strings.Fields(string(r.body)); len(lines) != 3 || !strings.HasPrefix(lines[0], "enr:") {
		t.Errorf("enr lines %q", r.body)
	}

	// ETag / If-None-Match: unchanged sets answer 304 with no body.
	r = h.do("GET", path, a.cred, nil)
	etag := r.hdr.Get("ETag")
	if etag == "" || r.hdr.Get("X-Consortium-Index") == "" {
		t.Fatalf("no ETag/index headers: %v", r.hdr)
	}
	r = h.do("GET", path, a.cred, nil, "If-None-Match", etag)
	if r.status != http.StatusNotModified || len(r.body) != 0 {
		t.Fatalf("If-None-Match: %d %q", r.status, r.body)
	}
	// A renewal does not change the set; a new node does.
	h.expect(h.do("POST", "/v1/nodes/"+a.tx.id+"/renew", a.cred, nil), 200, "")
	r = h.do("GET", path, a.cred, nil, "If-None-Match", etag)
	if r.status != http.StatusNotModified {
		t.Fatalf("renewal changed the set: %d", r.status)
	}
	h.mustRegister(a.cred, newNode(t, "tx", "10.1.0.50", ""))
	r = h.do("GET", path, a.cred, nil, "If-None-Match", etag)
	if r.status != 200 || r.hdr.Get("ETag") == etag {
		t.Fatalf("new node did not change the set: %d", r.status)
	}
}

func TestLeaseExpiry(t *testing.T) {
	h := newHarness(t, opts{ttl: 30 * time.Second})
	a, _ := consortium2(t, h)
	before := h.peers(a.cred, a.val.id)
	if !contains(before.Static, a.tx.ip) {
		t.Fatalf("tx not in set: %v", before.Static)
	}
	// Everyone but tx renews; tx's lease runs out.
	h.clock.Advance(20 * time.Second)
	for _, n := range []*testNode{a.val, a.pub, a.boot} {
		h.expect(h.do("POST", "/v1/nodes/"+n.id+"/renew", a.cred, nil), 200, "")
	}
	h.clock.Advance(10*time.Second + time.Millisecond)
	h.Registry.Reap()
	after := h.peers(a.cred, a.val.id)
	if contains(after.Static, a.tx.ip) {
		t.Fatalf("lapsed tx still in set: %v", after.Static)
	}
	if !contains(after.Static, a.pub.ip) {
		t.Fatalf("renewed public node left the set: %v", after.Static)
	}
	// A lapsed node cannot renew; it registers again (same record is fine) and is back.
	h.expect(h.do("POST", "/v1/nodes/"+a.tx.id+"/renew", a.cred, nil), 404, "not_found")
	h.expect(h.register(a.cred, a.tx), 200, "")
	if !contains(h.peers(a.cred, a.val.id).Static, a.tx.ip) {
		t.Fatal("re-registered node not back")
	}
	// The binding survives the lapse: another member still cannot take it.
	_, b := a, h.addMember("gamma")
	h.clock.Advance(31 * time.Second)
	h.Registry.Reap()
	a.tx.seq++
	h.expect(h.register(b, a.tx), 403, "not_owner")
}

func TestRevokedMemberLeavesEveryPeerSet(t *testing.T) {
	h := newHarness(t, opts{})
	a, b := consortium2(t, h)
	if !contains(h.peers(a.cred, a.pub.id).Static, b.pub.pub) {
		t.Fatal("beta's public node missing before revocation")
	}
	h.expect(h.do("DELETE", "/v1/members/beta", h.Admin, nil), 200, "")
	if contains(h.peers(a.cred, a.pub.id).Static, b.pub.pub) {
		t.Fatal("revoked member's public node still in alpha's set")
	}
	h.expect(h.do("POST", "/v1/nodes/"+b.pub.id+"/renew", b.cred, nil), 401, "revoked")
}

func TestRemoveNode(t *testing.T) {
	h := newHarness(t, opts{})
	a, _ := consortium2(t, h)
	// Read first, so a cached answer exists that the removal must replace.
	if !contains(h.peers(a.cred, a.val.id).Static, a.tx.ip) {
		t.Fatal("tx missing before the removal")
	}
	h.expect(h.do("DELETE", "/v1/nodes/"+a.tx.id, a.cred, nil), 200, "")
	if contains(h.peers(a.cred, a.val.id).Static, a.tx.ip) {
		t.Fatal("removed node still in set")
	}
	// A removed record cannot be replayed: seq must still grow.
	h.expect(h.register(a.cred, a.tx), 409, "stale_seq")
	a.tx.seq++
	h.expect(h.register(a.cred, a.tx), 200, "")
}

func contains(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, "@"+sub+":") {
			return true
		}
	}
	return false
}

func TestPeersForRole(t *testing.T) {
	h := newHarness(t, opts{})
	a, b := consortium2(t, h)
	r := h.do("GET", "/v1/peers?role=public", a.cred, nil)
	h.expect(r, 200, "")
	var ps registry.PeerSet
	r.json(t, &ps)
	if len(ps.Static) != 4 || !contains(ps.Static, b.pub.pub) || len(ps.Bootnodes) != 1 {
		t.Fatalf("new public node's set: %+v", ps)
	}
	r = h.do("GET", "/v1/peers?role=tx", a.cred, nil)
	ps = registry.PeerSet{}
	r.json(t, &ps)
	if len(ps.Static) != 3 || contains(ps.Static, b.pub.pub) {
		t.Fatalf("new tx node's set: %+v", ps)
	}
	h.expect(h.do("GET", "/v1/peers?role=miner", a.cred, nil), 400, "invalid")
	h.expect(h.do("GET", "/v1/peers?role=tx", h.Admin, nil), 403, "forbidden")
	h.expect(h.do("GET", "/v1/peers?role=tx&index=1", a.cred, nil), 400, "bad_query")
}
