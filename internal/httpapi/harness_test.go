package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store/sqlite"
	"github.com/consortium/consortium/internal/testutil"
)

// harness is a registrar on a real SQLite file behind real HTTP on
// 127.0.0.1, with a settable clock for lease tests.
type harness struct {
	t     *testing.T
	srv   *httptest.Server
	reg   *registry.Registry
	st    *sqlite.Store
	clock *testutil.Clock
	admin string
	dir   string
}

type opts struct {
	api  httpapi.Config
	ttl  time.Duration
	real bool // real clock
}

func newHarness(t *testing.T, o opts) *harness {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, st: st, clock: testutil.NewClock(), dir: dir}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := registry.Config{TTL: o.ttl, Logger: quiet}
	o.api.Logger = quiet
	if !o.real {
		cfg.Now = h.clock.Now
	}
	h.reg, err = registry.Open(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cred, ok, err := h.reg.EnsureAdmin(ctx)
	if err != nil || !ok {
		t.Fatal(err)
	}
	h.admin = cred.String()
	o.api.Registry = h.reg
	h.srv = httptest.NewServer(httpapi.New(o.api))
	t.Cleanup(func() { h.srv.Close(); st.Close() })
	return h
}

type resp struct {
	status int
	body   []byte
	hdr    http.Header
}

func (r resp) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %q: %v", r.body, err)
	}
}

func (h *harness) do(method, path, cred string, body any, hdr ...string) resp {
	h.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, h.srv.URL+path, rd)
	if err != nil {
		h.t.Fatal(err)
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	// Bodies as sent (the client would otherwise ask for gzip and undo it
	// unseen); gzip_test.go asks for gzip itself.
	req.Header.Set("Accept-Encoding", "identity")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := h.srv.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, body: b, hdr: res.Header}
}

// expect checks status and, for errors, the JSON error body.
func (h *harness) expect(r resp, status int, code string) {
	h.t.Helper()
	if r.status != status {
		h.t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if status >= 400 {
		var eb httpapi.ErrorBody
		if err := json.Unmarshal(r.body, &eb); err != nil || eb.Error == "" {
			h.t.Fatalf("error body %q is not {error, code}", r.body)
		}
		if code != "" && eb.Code != code {
			h.t.Fatalf("error code %q, want %q (%s)", eb.Code, code, eb.Error)
		}
		if bytes.Contains(r.body, []byte("goroutine")) || bytes.Contains(r.body, []byte(".go:")) {
			h.t.Fatalf("error body leaks internals: %s", r.body)
		}
	}
}

func (h *harness) addMember(name string) string {
	h.t.Helper()
	r := h.do("POST", "/v1/members", h.admin, map[string]string{"name": name})
	h.expect(r, 201, "")
	var mc httpapi.MemberCreated
	r.json(h.t, &mc)
	return mc.Credential
}

// testNode is a node key with its registration parameters.
type testNode struct {
	key  *ecdsa.PrivateKey
	id   string
	role string
	ip   string
	pub  string // public IP for role public
	port int
	seq  uint64
	cmt  uint16 // a CometBFT port for the records' "cmt" entry; 0 for none
}

func newNode(t *testing.T, role, ip, pub string) *testNode {
	k := testutil.Key(t)
	return &testNode{key: k, id: testutil.ID(k), role: role, ip: ip, pub: pub, port: 30303, seq: 1}
}

func (n *testNode) request(t *testing.T) httpapi.RegisterRequest {
	sign := func(ip string, tcp int) string {
		if n.cmt != 0 {
			return cmtENR(t, n.key, n.seq, ip, tcp, n.port, n.cmt)
		}
		return testutil.ENR(t, n.key, n.seq, ip, tcp, n.port)
	}
	req := httpapi.RegisterRequest{Role: n.role, ENR: sign(n.ip, n.port)}
	if n.role == "bootnode" {
		req.ENR = sign(n.ip, 0)
	}
	if n.pub != "" {
		req.PublicENR = sign(n.pub, n.port)
	}
	return req
}

func (h *harness) register(cred string, n *testNode) resp {
	h.t.Helper()
	return h.do("POST", "/v1/nodes", cred, n.request(h.t))
}

func (h *harness) mustRegister(cred string, n *testNode) {
	h.t.Helper()
	r := h.register(cred, n)
	if r.status != 201 && r.status != 200 {
		h.t.Fatalf("register %s: %d %s", n.role, r.status, r.body)
	}
}

func (h *harness) peers(cred, id string) registry.PeerSet {
	h.t.Helper()
	r := h.do("GET", "/v1/nodes/"+id+"/peers", cred, nil)
	h.expect(r, 200, "")
	var ps registry.PeerSet
	r.json(h.t, &ps)
	return ps
}
