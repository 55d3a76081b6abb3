package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/dashboard"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
)

func decodeError(t *testing.T, rep reply, status int, code string) {
	t.Helper()
	if rep.status != status {
		t.Fatalf("status %d, want %d: %s", rep.status, status, rep.body)
	}
	var eb dashboard.ErrorBody
	if err := json.Unmarshal(rep.body, &eb); err != nil || eb.Error == "" || eb.Code != code {
		t.Fatalf("body %s is not {error, code:%q}", rep.body, code)
	}
	if ct := rep.hdr.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

func TestAuthentication(t *testing.T) {
	r := newRegistrar(t, setup{})
	good := r.addMember("acme")
	revoked := r.addMember("gone")
	if rep := r.do("DELETE", "/v1/members/gone", r.admin, nil); rep.status != 200 {
		t.Fatalf("revoke: %d %s", rep.status, rep.body)
	}
	cases := []struct {
		name, path, header, code string
	}{
		{"none", "/ui/api/state", "", "unauthenticated"},
		{"garbage", "/ui/api/state", "Bearer nonsense", "unauthenticated"},
		{"basic", "/ui/api/state", "Basic " + good, "unauthenticated"},
		{"wrong secret", "/ui/api/state", "Bearer acme.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "unauthenticated"},
		{"in the query", "/ui/api/state?credential=" + good, "", "unauthenticated"},
		{"in the query as token", "/ui/api/stream?token=" + good + "&access_token=" + good, "", "unauthenticated"},
		{"revoked", "/ui/api/state", "Bearer " + revoked, "revoked"},
		{"stream none", "/ui/api/stream", "", "unauthenticated"},
		{"stream revoked", "/ui/api/stream", "Bearer " + revoked, "revoked"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", r.URL+c.path, nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			res, err := r.http.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			decodeError(t, reply{res.StatusCode, b, res.Header}, 401, c.code)
			if bytes.Contains(b, []byte(good)) || bytes.Contains(b, []byte(revoked)) {
				t.Fatalf("error echoes the credential: %s", b)
			}
		})
	}
	for _, cred := range []string{r.admin, good} {
		if rep := r.do("GET", "/ui/api/state", cred, nil); rep.status != 200 {
			t.Fatalf("good credential: %d %s", rep.status, rep.body)
		}
	}
}

func TestPageAndStaticFiles(t *testing.T) {
	r := newRegistrar(t, setup{})
	rep := r.do("GET", "/ui/", "", nil)
	if rep.status != 200 || !strings.HasPrefix(rep.hdr.Get("Content-Type"), "text/html") {
		t.Fatalf("/ui/: %d %q", rep.status, rep.hdr.Get("Content-Type"))
	}
	csp := rep.hdr.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	// Nothing from elsewhere: no CDN, no absolute URL.
	for _, f := range []string{"/ui/", "/ui/static/app.js", "/ui/static/graph.js", "/ui/static/app.css", "/ui/static/favicon.svg"} {
		rep := r.do("GET", f, "", nil)
		if rep.status != 200 {
			t.Fatalf("%s: %d", f, rep.status)
		}
		for _, bad := range []string{"http://", "https://", "//cdn", "innerHTML", "eval("} {
			// The SVG namespace is the one absolute URL allowed.
			body := bytes.ReplaceAll(rep.body, []byte("http://www.w3.org/2000/svg"), nil)
			if bytes.Contains(body, []byte(bad)) {
				t.Errorf("%s contains %q", f, bad)
			}
		}
	}
	if ct := r.do("GET", "/ui/static/app.js", "", nil).hdr.Get("Content-Type"); !strings.Contains(ct, "javascript") {
		t.Errorf("app.js Content-Type %q", ct)
	}
	if rep := r.do("GET", "/ui/static/nope.js", "", nil); rep.status != 404 {
		t.Errorf("missing static file: %d", rep.status)
	}
	decodeError(t, r.do("GET", "/ui/api/nope", r.admin, nil), 404, "no_route")
	decodeError(t, r.do("POST", "/ui/api/state", r.admin, nil), 404, "no_route")
	// The registrar's mux sends /ui to /ui/.
	req, _ := http.NewRequest("GET", r.URL+"/ui", nil)
	res, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode/100 != 3 || res.Header.Get("Location") != "/ui/" {
		t.Errorf("/ui: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestStateAdmin(t *testing.T) {
	r := newRegistrar(t, setup{})
	d := buildDevnet(t, devnetMembers)
	d.register(t, r)
	var st dashboard.State
	rep := r.do("GET", "/ui/api/state", r.admin, nil)
	if err := json.Unmarshal(rep.body, &st); err != nil {
		t.Fatal(err)
	}
	if !st.Admin || st.Principal != "admin" || len(st.Nodes) != len(d.nodes) {
		t.Fatalf("admin state: admin=%v principal=%q nodes=%d", st.Admin, st.Principal, len(st.Nodes))
	}
	byID := map[string]dashboard.Node{}
	for _, n := range st.Nodes {
		byID[n.ID] = n
	}
	for _, n := range d.nodes {
		got, ok := byID[n.id]
		if !ok {
			t.Fatalf("node %s %s missing", n.member, n.role)
		}
		if !strings.HasSuffix(got.Endpoint, "@"+n.privateEndpoint()) || got.Role != n.role || got.Member != n.member || !got.Live {
			t.Errorf("node %s %s: %+v", n.member, n.role, got)
		}
		if n.role == "public" && !strings.HasSuffix(got.PublicEndpoint, "@"+n.pubIP+":30303") {
			t.Errorf("public endpoint %q", got.PublicEndpoint)
		}
		if len(got.PeerIDs) != len(n.status.PeerIDs) {
			t.Errorf("%s %s peer_ids %d, want %d", n.member, n.role, len(got.PeerIDs), len(n.status.PeerIDs))
		}
	}
	if len(st.Members) != 3 {
		t.Fatalf("members %+v", st.Members)
	}
	for _, m := range st.Members {
		if m.Health != dashboard.HealthUp || m.Nodes != 4 || m.Live != 4 || len(m.Signers) != 1 || m.Sealed != 1 {
			t.Errorf("member %+v", m)
		}
	}
	// Heads 120..122 were each sealed by the signer their number picks.
	if len(st.Blocks) != 3 {
		t.Fatalf("blocks %+v", st.Blocks)
	}
	for _, b := range st.Blocks {
		if b.Member == "" || d.signers[b.Signer] != b.Member {
			t.Errorf("block %+v: sealer's member should be %q", b, d.signers[b.Signer])
		}
	}
	kinds := map[string]int{}
	for _, e := range st.Events {
		kinds[e.Kind]++
	}
	if kinds["registered"] != len(d.nodes) || kinds["member_added"] != 3 {
		t.Errorf("events %v", kinds)
	}
}

// TestMemberSeesWhatTheAPIShows compares each member's page with its
// answer from GET /v1/nodes and checks no other member's private endpoint
// or private node is anywhere in the bytes.
func TestMemberSeesWhatTheAPIShows(t *testing.T) {
	r := newRegistrar(t, setup{})
	d := buildDevnet(t, devnetMembers)
	d.register(t, r)
	for _, m := range d.members {
		t.Run(m, func(t *testing.T) {
			cred := d.creds[m]
			rep := r.do("GET", "/ui/api/state", cred, nil)
			var st dashboard.State
			if err := json.Unmarshal(rep.body, &st); err != nil {
				t.Fatal(err)
			}
			var api struct{ Nodes []registry.NodeView }
			json.Unmarshal(r.do("GET", "/v1/nodes", cred, nil).body, &api)
			if len(api.Nodes) != len(st.Nodes) {
				t.Fatalf("page has %d nodes, the API %d", len(st.Nodes), len(api.Nodes))
			}
			for i, v := range api.Nodes {
				n := st.Nodes[i]
				if n.ID != v.ID || n.Endpoint != v.Enode || n.PublicEndpoint != v.PublicEnode || n.Live != v.Live {
					t.Errorf("node %d: page %+v, API %+v", i, n, v)
				}
				if v.Member != m && len(n.PeerIDs) > 0 {
					t.Errorf("another member's peer IDs shown: %+v", n)
				}
			}
			// Own four plus the two other public nodes.
			if len(st.Nodes) != 6 || st.Admin || st.Principal != m {
				t.Fatalf("member state: %d nodes, admin=%v, principal=%q", len(st.Nodes), st.Admin, st.Principal)
			}
			s := r.stream(cred)
			snap := s.next(5 * time.Second)
			for _, body := range [][]byte{rep.body, snap.data} {
				for _, bad := range d.forbidden(m) {
					if bytes.Contains(body, []byte(bad)) {
						t.Fatalf("member %s is shown %q", m, bad)
					}
				}
			}
			names := []string{}
			for _, mm := range st.Members {
				names = append(names, mm.Name)
			}
			if strings.Join(names, ",") != "acme,bank,coop" {
				t.Errorf("members %v", names)
			}
		})
	}
}

func TestStreamShowsChanges(t *testing.T) {
	r := newRegistrar(t, setup{ttl: time.Hour})
	d := buildDevnet(t, devnetMembers)
	d.register(t, r)
	s := r.stream(r.admin)
	if st := s.snapshot(); len(st.Nodes) != len(d.nodes) {
		t.Fatalf("snapshot has %d nodes", len(st.Nodes))
	}

	// A registration is pushed at once: the registry's change wakes the stream.
	acme := d.creds["acme"]
	n := newNode(t, "acme", "tx", "10.1.0.9", "")
	start := time.Now()
	r.register(acme, n)
	got := s.until(time.Second, func(dl delta) bool { _, ok := dl.node(n.id); return ok && dl.event("registered", n.id) })
	t.Logf("registration shown after %v", time.Since(start))

	// A status report rides on a renewal and moves no index; the tick finds it.
	var val *node
	for _, x := range d.nodes {
		if x.member == "acme" && x.role == "validator" {
			val = x
		}
	}
	before := val.status.PeerIDs
	val.status.PeerIDs = append(append([]string{}, before...), n.id)
	sort.Strings(val.status.PeerIDs)
	val.status.Head = 130
	start = time.Now()
	r.renew(acme, val)
	got = s.until(time.Second, func(dl delta) bool {
		v, ok := dl.node(val.id)
		return ok && v.Head == 130 && dl.event(dashboard.EventPeered, n.id)
	})
	t.Logf("status change shown after %v", time.Since(start))
	if got.Index != r.reg.Index() {
		t.Errorf("delta index %d, registry %d", got.Index, r.reg.Index())
	}

	// The connection goes away: a derived "disconnected".
	val.status.PeerIDs = before
	r.renew(acme, val)
	s.until(time.Second, func(dl delta) bool { return dl.event(dashboard.EventDisconnected, n.id) })

	// Removal: the node is flagged, then gone for the administrator too.
	if rep := r.do("DELETE", "/v1/nodes/"+n.id, r.admin, nil); rep.status != 200 {
		t.Fatalf("remove: %d %s", rep.status, rep.body)
	}
	s.until(time.Second, func(dl delta) bool {
		return len(dl.Remove) == 1 && dl.Remove[0] == n.id && dl.event("removed", n.id)
	})
}

func TestStreamShowsExpiry(t *testing.T) {
	r := newRegistrar(t, setup{ttl: 30 * time.Second, fakeClock: true})
	acme := r.addMember("acme")
	n := newNode(t, "acme", "validator", "10.1.0.3", "")
	r.register(acme, n)
	s := r.stream(r.admin)
	s.snapshot()
	r.clock.Advance(31 * time.Second)
	r.reg.Reap()
	s.until(time.Second, func(dl delta) bool {
		v, ok := dl.node(n.id)
		if !ok || v.Live || !dl.event("expired", n.id) {
			return false
		}
		for _, m := range dl.Members {
			if m.Name == "acme" && m.Health == dashboard.HealthDown {
				return true
			}
		}
		return false
	})
}

// A member's stream never carries another member's private node, not even
// for a moment: its registration moves the index and wakes the stream, but
// nothing is sent about it.
func TestMemberStreamPrivacy(t *testing.T) {
	r := newRegistrar(t, setup{ttl: time.Hour})
	d := buildDevnet(t, devnetMembers)
	d.register(t, r)
	s := r.stream(d.creds["bank"])
	s.snapshot()
	priv := newNode(t, "acme", "tx", "10.1.0.50", "")
	r.register(d.creds["acme"], priv)
	pub := newNode(t, "acme", "public", "10.1.0.51", "198.51.100.51")
	r.register(d.creds["acme"], pub)
	dl := s.until(2*time.Second, func(dl delta) bool { _, ok := dl.node(pub.id); return ok })
	for _, bad := range []string{priv.id, priv.ip, pub.ip} {
		if bytes.Contains(dl.raw, []byte(bad)) {
			t.Fatalf("bank's stream carries %q: %s", bad, dl.raw)
		}
	}
	v, _ := dl.node(pub.id)
	if v.Endpoint != "" || !strings.HasSuffix(v.PublicEndpoint, "@198.51.100.51:30303") {
		t.Fatalf("another member's public node shown as %+v", v)
	}
	// Drain whatever else came within a tick; none of it may name priv.
	deadline := time.After(700 * time.Millisecond)
	for {
		select {
		case m := <-s.msgs:
			for _, bad := range []string{priv.id, priv.ip, pub.ip} {
				if bytes.Contains(m.data, []byte(bad)) {
					t.Fatalf("bank's stream carries %q", bad)
				}
			}
			continue
		case <-deadline:
		}
		break
	}
}

// Run reads the nodes only while a page is open (issue 19: an idle
// registrar of 10,000 nodes spent a few per cent of a core on it). A peering
// made while nobody watches is not derived: the first page starts from it as
// its baseline. Once a page is open, connections are followed.
func TestRunLooksOnlyWhileAPageIsOpen(t *testing.T) {
	r := newRegistrar(t, setup{ttl: time.Hour, dash: dashboard.Config{Tick: 50 * time.Millisecond}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.dash.Run(ctx) }()
	defer func() { cancel(); testutil.Wait(t, time.Minute, "the dashboard's Run to return after cancel", done) }()
	acme := r.addMember("acme")
	a, b := newNode(t, "acme", "validator", "10.1.0.3", ""), newNode(t, "acme", "tx", "10.1.0.4", "")
	r.register(acme, a)
	r.register(acme, b)
	time.Sleep(200 * time.Millisecond)
	a.status.PeerIDs, a.status.Peers = []string{b.id}, 1
	r.renew(acme, a)                   // a renewal moves no index: only a look at the nodes sees it
	time.Sleep(300 * time.Millisecond) // six of Run's ticks, had it looked
	s := r.stream(r.admin)
	defer s.close()
	for _, e := range s.snapshot().Events {
		if e.Kind == dashboard.EventPeered {
			t.Fatalf("a peering made while no page was open was derived: %+v", e)
		}
	}
	a.status.PeerIDs, a.status.Peers = nil, 0
	r.renew(acme, a)
	s.until(2*time.Second, func(dl delta) bool { return dl.event(dashboard.EventDisconnected, min(a.id, b.id)) })
}

func TestRevocationEndsTheStream(t *testing.T) {
	r := newRegistrar(t, setup{})
	acme := r.addMember("acme")
	s := r.stream(acme)
	s.snapshot()
	r.do("DELETE", "/v1/members/acme", r.admin, nil)
	m := s.next(2 * time.Second)
	var eb dashboard.ErrorBody
	json.Unmarshal(m.data, &eb)
	if m.event != "error" || eb.Code != "revoked" {
		t.Fatalf("got %q %s, want an error event with code revoked", m.event, m.data)
	}
	select {
	case _, ok := <-s.msgs:
		if ok {
			t.Fatal("stream goes on after the error")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("stream not closed after the error")
	}
}

// The registrar's http.Server has a ReadTimeout; a stream outlives it.
func TestStreamOutlivesReadTimeout(t *testing.T) {
	r := newRegistrar(t, setup{readTimeout: 300 * time.Millisecond})
	acme := r.addMember("acme")
	s := r.stream(r.admin)
	s.snapshot()
	time.Sleep(time.Second)
	n := newNode(t, "acme", "tx", "10.1.0.9", "")
	r.register(acme, n)
	s.until(time.Second, func(dl delta) bool { _, ok := dl.node(n.id); return ok })
}

// Over TLS the registrar speaks HTTP/2; the stream works the same and
// outlives the read timeout there too.
func TestStreamOverHTTP2(t *testing.T) {
	r := newRegistrar(t, setup{tls: true, readTimeout: 300 * time.Millisecond})
	acme := r.addMember("acme")
	s := r.stream(r.admin)
	if s.res.ProtoMajor != 2 {
		t.Fatalf("stream over %s, want HTTP/2", s.res.Proto)
	}
	s.snapshot()
	time.Sleep(time.Second)
	n := newNode(t, "acme", "tx", "10.1.0.9", "")
	r.register(acme, n)
	s.until(time.Second, func(dl delta) bool { _, ok := dl.node(n.id); return ok })
}

func TestCloseEndsStreams(t *testing.T) {
	r := newRegistrar(t, setup{})
	s := r.stream(r.admin)
	s.snapshot()
	r.dash.Close()
	select {
	case <-s.done:
	case <-time.After(2 * time.Second):
		t.Fatal("stream still open after Close")
	}
}

func TestStreamLimit(t *testing.T) {
	r := newRegistrar(t, setup{dash: dashboard.Config{MaxStreams: 2}})
	r.stream(r.admin).snapshot()
	r.stream(r.admin).snapshot()
	decodeError(t, r.do("GET", "/ui/api/stream", r.admin, nil), 429, "rate_limited")
	acme := r.addMember("acme")
	r.stream(acme).snapshot() // the limit is per credential
}

func TestRateLimit(t *testing.T) {
	r := newRegistrar(t, setup{dash: dashboard.Config{RateLimit: 1}})
	acme := r.addMember("acme")
	for i := 0; i < 4; i++ { // the burst: 3 × 1 + 1
		if rep := r.do("GET", "/ui/api/state", r.admin, nil); rep.status != 200 {
			t.Fatalf("request %d: %d %s", i, rep.status, rep.body)
		}
	}
	decodeError(t, r.do("GET", "/ui/api/state", r.admin, nil), 429, "rate_limited")
	decodeError(t, r.do("GET", "/ui/api/stream", r.admin, nil), 429, "rate_limited")
	if rep := r.do("GET", "/ui/api/state", acme, nil); rep.status != 200 {
		t.Fatalf("another credential is limited too: %d", rep.status)
	}
}

func TestStreamHeartbeat(t *testing.T) {
	r := newRegistrar(t, setup{dash: dashboard.Config{Heartbeat: 100 * time.Millisecond}})
	req, _ := http.NewRequestWithContext(context.Background(), "GET", r.URL+"/ui/api/stream", nil)
	req.Header.Set("Authorization", "Bearer "+r.admin)
	res, err := r.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	buf := make([]byte, 0, 64<<10)
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && !bytes.Contains(buf, []byte("\n: ping\n")) {
		b := make([]byte, 4096)
		n, err := res.Body.Read(b)
		buf = append(buf, b[:n]...)
		if err != nil {
			break
		}
	}
	if !bytes.Contains(buf, []byte("\n: ping\n")) {
		t.Fatalf("no heartbeat in %q", buf)
	}
}

func TestStreamShowsConsensus(t *testing.T) {
	r := newRegistrar(t, setup{ttl: time.Hour})
	d := buildDevnet(t, devnetMembers)
	d.register(t, r)
	s := r.stream(r.admin)
	if st := s.snapshot(); st.Chain != nil {
		t.Fatalf("a chain before any consensus report: %+v", st.Chain)
	}
	var val *node
	for _, x := range d.nodes {
		if x.member == "bank" && x.role == "validator" {
			val = x
		}
	}
	addr := func(c byte) string { return strings.Repeat(string(c), 40) }
	val.status.Consensus = &registry.ConsensusStatus{
		Height: 42, Proposer: addr('a'), Validator: addr('b'), BlockMillis: 1000,
		Validators: []registry.ValidatorVote{
			{Address: addr('a'), Name: "acme", Power: 10, Signed: true},
			{Address: addr('b'), Name: "bank", Power: 10, Signed: true},
			{Address: addr('c'), Name: "coop", Power: 10, Signed: false},
			{Address: addr('d'), Name: "dair", Power: 10, Signed: true},
		},
	}
	r.renew(d.creds["bank"], val)
	got := s.until(time.Second, func(dl delta) bool { return dl.Chain != nil })
	c := got.Chain
	if c.Height != 42 || c.ProposerName != "acme" || c.Signed != 3 || c.Tolerates != 1 || c.ReporterMember != "bank" || !c.SelfReported {
		t.Errorf("chain %+v", c)
	}
	for _, v := range c.Validators {
		if v.Name == "coop" && v.Signed {
			t.Error("coop shown as a signer")
		}
	}
}
