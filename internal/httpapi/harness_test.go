package httpapi_test

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrartest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
)

// harness is an in-process registrar (internal/registrartest: a real
// SQLite file, the real API set up as the registrar sets it up, on
// 127.0.0.1) with a settable clock for lease tests, and the requests the
// tests make of it.
type harness struct {
	*registrartest.Registrar
	t     *testing.T
	clock *testutil.Clock
}

type opts struct {
	api  httpapi.Config
	ttl  time.Duration
	real bool // real clock, and the registry's loop running
}

// newHarness starts the registrar; it is stopped when the test ends. On
// the settable clock the registry's loop is off: the test reaps
// (Registry.Reap) when it advances the clock past a lease.
func newHarness(t *testing.T, o opts) *harness {
	t.Helper()
	h := &harness{t: t, clock: testutil.NewClock()}
	ro := registrartest.Options{Registry: registry.Config{TTL: o.ttl}, API: o.api, Manual: !o.real}
	if !o.real {
		ro.Registry.Now = h.clock.Now
	}
	h.Registrar = registrartest.New(t, ro)
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
	req, err := http.NewRequest(method, h.URL+path, rd)
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
	res, err := h.Client().Do(req)
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
	r := h.do("POST", "/v1/members", h.Admin, map[string]string{"name": name})
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
