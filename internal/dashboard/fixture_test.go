package dashboard_test

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/dashboard"
	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrartest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// registrar is the registrar as `consortium registrar` builds it: the
// shared in-process registrar (registrartest) with the dashboard mounted at
// /ui/, served by a real http.Server on 127.0.0.1 with the registrar's
// timeouts.
type registrar struct {
	t     testing.TB
	URL   string
	reg   *registry.Registry
	dash  *dashboard.Dashboard
	clock *testutil.Clock // nil: real time
	admin string
	h     *registrartest.Registrar
	http  *http.Client // for calls
	long  *http.Client // for streams: no timeout
}

type setup struct {
	ttl         time.Duration
	fakeClock   bool
	readTimeout time.Duration // default the registrar's 30 s
	tls         bool          // https with HTTP/2, as the registrar serves with --tls-cert
	dash        dashboard.Config
}

func newRegistrar(t testing.TB, o setup) *registrar {
	t.Helper()
	r := &registrar{t: t}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Manual: these tests reap by hand (on their clock) when they reap.
	opts := registrartest.Options{Registry: registry.Config{TTL: o.ttl}, TLS: o.tls, Manual: true}
	if o.fakeClock {
		r.clock = testutil.NewClock()
		opts.Registry.Now = r.clock.Now
	}
	opts.Mount = func(reg *registry.Registry) map[string]http.Handler {
		o.dash.Registry, o.dash.Logger = reg, quiet
		r.dash = dashboard.New(o.dash)
		return map[string]http.Handler{"/ui/": r.dash}
	}
	if o.readTimeout != 0 {
		opts.Server = func(hs *http.Server) { hs.ReadTimeout = o.readTimeout }
	}
	h := registrartest.New(t, opts)
	// Cleanups run last first: the dashboard's streams end before the
	// server closes.
	t.Cleanup(func() { r.dash.Close() })
	r.URL, r.reg, r.admin, r.h = h.URL, h.Registry, h.Admin, h
	r.long = h.Client()
	r.http = &http.Client{Transport: h.Client().Transport, Timeout: 30 * time.Second}
	return r
}

type reply struct {
	status int
	body   []byte
	hdr    http.Header
}

func (r *registrar) do(method, path, cred string, body any) reply {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, r.URL+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	res, err := r.http.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return reply{res.StatusCode, b, res.Header}
}

func (r *registrar) addMember(name string) string {
	r.t.Helper()
	return r.h.AddMember(r.t, name)
}

// node is a node key with what it registers and reports.
type node struct {
	key    *ecdsa.PrivateKey
	id     string
	member string
	role   string
	ip     string // private
	pubIP  string // role public only
	seq    uint64
	status registry.Status
}

func newNode(t testing.TB, member, role, ip, pubIP string) *node {
	k := testutil.Key(t)
	return &node{key: k, id: testutil.ID(k), member: member, role: role, ip: ip, pubIP: pubIP, seq: 1}
}

func (n *node) request(t testing.TB) httpapi.RegisterRequest {
	req := httpapi.RegisterRequest{Role: n.role, ENR: testutil.ENR(t, n.key, n.seq, n.ip, 30303, 30303)}
	if n.role == "bootnode" {
		req.ENR = testutil.ENR(t, n.key, n.seq, n.ip, 0, 30301)
	}
	if n.pubIP != "" {
		req.PublicENR = testutil.ENR(t, n.key, n.seq, n.pubIP, 30303, 30303)
	}
	st := n.status
	req.Status = &st
	return req
}

// privateEndpoint is the text the node's private endpoint shows as.
func (n *node) privateEndpoint() string {
	if n.role == "bootnode" {
		return n.ip + ":0?discport=30301"
	}
	return n.ip + ":30303"
}

func (r *registrar) register(cred string, n *node) {
	r.t.Helper()
	rep := r.do("POST", "/v1/nodes", cred, n.request(r.t))
	if rep.status != 201 && rep.status != 200 {
		r.t.Fatalf("registering %s %s: %d %s", n.member, n.role, rep.status, rep.body)
	}
}

func (r *registrar) renew(cred string, n *node) {
	r.t.Helper()
	st := n.status
	rep := r.do("POST", "/v1/nodes/"+n.id+"/renew", cred, httpapi.RenewRequest{Status: &st})
	if rep.status != 200 {
		r.t.Fatalf("renewing %s %s: %d %s", n.member, n.role, rep.status, rep.body)
	}
}

// devnet is the devnet's shape: members with a bootnode, a validator, a tx
// node and a public node each, peered as the policy intends.
type devnet struct {
	members []string
	creds   map[string]string
	nodes   []*node
	signers map[string]string // coinbase -> member
	edges   [][2]string       // intended connections, sorted
}

var devnetMembers = []string{"acme", "bank", "coop"}

// buildDevnet makes the nodes and their statuses; register puts them in.
func buildDevnet(t testing.TB, members []string) *devnet {
	d := &devnet{members: members, creds: map[string]string{}, signers: map[string]string{}}
	for i, m := range members {
		net := i + 1
		d.nodes = append(d.nodes,
			newNode(t, m, "bootnode", fmt.Sprintf("10.%d.0.2", net), ""),
			newNode(t, m, "validator", fmt.Sprintf("10.%d.0.3", net), ""),
			newNode(t, m, "tx", fmt.Sprintf("10.%d.0.4", net), ""),
			newNode(t, m, "public", fmt.Sprintf("10.%d.0.5", net), fmt.Sprintf("203.0.113.%d", net)),
		)
	}
	var coinbases []string
	for _, n := range d.nodes {
		if n.role == "validator" {
			cb := strings.ToLower(crypto.PubkeyToAddress(testutil.Key(t).PublicKey).Hex())
			n.status.Coinbase = cb
			d.signers[cb] = n.member
			coinbases = append(coinbases, cb)
		}
	}
	// The policy's mesh: inside a member every non-bootnode with every
	// other; across members the public nodes with each other.
	peers := map[string][]string{}
	for i, a := range d.nodes {
		for _, b := range d.nodes[i+1:] {
			if a.role == "bootnode" || b.role == "bootnode" {
				continue
			}
			if a.member == b.member || (a.role == "public" && b.role == "public") {
				peers[a.id] = append(peers[a.id], b.id)
				peers[b.id] = append(peers[b.id], a.id)
				d.edges = append(d.edges, edge(a.id, b.id))
			}
		}
	}
	sortEdges(d.edges)
	for i, n := range d.nodes {
		sort.Strings(peers[n.id])
		n.status.PeerIDs = peers[n.id]
		n.status.Peers = len(peers[n.id])
		n.status.Client = "Geth/v1.17.10-stable-2a5ff2e4/linux-amd64/go1.26.8"
		if n.role != "bootnode" {
			// Heads a block or two apart, as reports arrive: several
			// recent blocks, sealed in turn by each member's signer.
			n.status.Head = 120 + uint64(i%3)
			n.status.HeadSigner = coinbases[int(n.status.Head)%len(coinbases)]
		} else {
			n.status.Client = "consortium-bootnode"
		}
	}
	return d
}

func (d *devnet) register(t testing.TB, r *registrar) {
	for _, m := range d.members {
		d.creds[m] = r.addMember(m)
	}
	for _, n := range d.nodes {
		r.register(d.creds[n.member], n)
	}
}

func edge(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

func sortEdges(es [][2]string) {
	sort.Slice(es, func(i, j int) bool {
		if es[i][0] != es[j][0] {
			return es[i][0] < es[j][0]
		}
		return es[i][1] < es[j][1]
	})
}

// forbidden lists what member m must never be shown: other members'
// private endpoints (their public nodes' included) and the IDs of their
// non-public nodes.
func (d *devnet) forbidden(m string) []string {
	var out []string
	for _, n := range d.nodes {
		if n.member == m {
			continue
		}
		out = append(out, n.ip+":", "@"+n.ip)
		if n.role != "public" {
			out = append(out, n.id)
		}
	}
	return out
}

// sse reads one dashboard stream.
type sse struct {
	t    testing.TB
	res  *http.Response
	msgs chan sseMsg
	done chan struct{}
}

type sseMsg struct {
	event string
	data  []byte
	at    time.Time
}

func (r *registrar) stream(cred string) *sse {
	r.t.Helper()
	req, _ := http.NewRequest("GET", r.URL+"/ui/api/stream", nil)
	req.Header.Set("Authorization", "Bearer "+cred)
	res, err := r.long.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		r.t.Fatalf("stream: %d %s", res.StatusCode, b)
	}
	s := &sse{t: r.t, res: res, msgs: make(chan sseMsg, 1024), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer close(s.msgs)
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
		var m sseMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m.event != "" {
					m.at = time.Now()
					s.msgs <- m
				}
				m = sseMsg{}
			case strings.HasPrefix(line, "event: "):
				m.event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				m.data = []byte(line[len("data: "):])
			}
		}
	}()
	r.t.Cleanup(s.close)
	return s
}

func (s *sse) close() {
	s.res.Body.Close()
	testutil.Wait(s.t, time.Minute, "the stream's reader to stop after its body closed", s.done)
}

// next returns the next message, failing after timeout.
func (s *sse) next(timeout time.Duration) sseMsg {
	s.t.Helper()
	select {
	case m, ok := <-s.msgs:
		if !ok {
			s.t.Fatal("stream ended")
		}
		return m
	case <-time.After(timeout):
		s.t.Fatalf("no stream message within %v", timeout)
	}
	return sseMsg{}
}

func (s *sse) snapshot() dashboard.State {
	s.t.Helper()
	m := s.next(5 * time.Second)
	if m.event != "snapshot" {
		s.t.Fatalf("first message is %q, want snapshot", m.event)
	}
	var st dashboard.State
	if err := json.Unmarshal(m.data, &st); err != nil {
		s.t.Fatal(err)
	}
	return st
}

// until reads deltas until ok accepts one, failing after timeout.
func (s *sse) until(timeout time.Duration, ok func(d delta) bool) delta {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			s.t.Fatalf("no matching delta within %v", timeout)
		}
		m := s.next(left)
		if m.event != "delta" {
			s.t.Fatalf("got %q event: %s", m.event, m.data)
		}
		var d delta
		if err := json.Unmarshal(m.data, &d); err != nil {
			s.t.Fatal(err)
		}
		d.raw = m.data
		if ok(d) {
			return d
		}
	}
}

// delta is dashboard.Delta with its nodes decoded.
type delta struct {
	Now     time.Time          `json:"now"`
	Index   uint64             `json:"index"`
	Upsert  []dashboard.Node   `json:"upsert"`
	Remove  []string           `json:"remove"`
	Members []dashboard.Member `json:"members"`
	Blocks  []dashboard.Block  `json:"blocks"`
	Chain   *dashboard.Chain   `json:"chain"`
	Events  []dashboard.Event  `json:"events"`
	raw     []byte
}

func (d delta) node(id string) (dashboard.Node, bool) {
	for _, n := range d.Upsert {
		if n.ID == id {
			return n, true
		}
	}
	return dashboard.Node{}, false
}

func (d delta) event(kind, id string) bool {
	for _, e := range d.Events {
		if e.Kind == kind && (e.Node == id || e.Peer == id) {
			return true
		}
	}
	return false
}
