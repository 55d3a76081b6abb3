package metricstest

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrartest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
)

// registrar is the shared in-process registrar (registrartest), on a
// settable clock when the test drives expiry, so expiry needs no sleeping.
type registrar struct {
	*registrartest.Registrar
	t     testing.TB
	clock *testutil.Clock
}

func newRegistrar(t testing.TB, ttl time.Duration, fake bool) *registrar {
	t.Helper()
	r := &registrar{t: t}
	o := registrartest.Options{Registry: registry.Config{TTL: ttl}}
	if fake {
		// The test reaps by hand at the times it sets.
		r.clock = testutil.NewClock()
		o.Registry.Now, o.Manual = r.clock.Now, true
	}
	r.Registrar = registrartest.New(t, o)
	return r
}

func (r *registrar) do(method, path, cred string, body any) (int, []byte) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, r.URL+path, rd)
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	res, err := r.Client().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

func (r *registrar) metrics() samples { return scrape(r.t, r.URL+"/metrics") }

func (r *registrar) addMember(name string) string {
	r.t.Helper()
	return r.AddMember(r.t, name)
}

type node struct {
	key  *ecdsa.PrivateKey
	id   string
	role string
	ip   string
}

func newNode(t testing.TB, role, ip string) *node {
	k := testutil.Key(t)
	return &node{key: k, id: testutil.ID(k), role: role, ip: ip}
}

func (n *node) body(t testing.TB, seq uint64) httpapi.RegisterRequest {
	return httpapi.RegisterRequest{Role: n.role, ENR: testutil.ENR(t, n.key, seq, n.ip, 30303, 30303)}
}

// check is one documented metric and how to see it move: before runs
// ahead of the event (its value is compared), event makes it happen,
// moved judges the two scrapes.
type check struct {
	metric string
	event  string
	run    func(before samples) (moved bool, detail string)
}

// TestRegistrarMetricsMove takes each documented registrar metric through
// the event it counts and checks it moved. A documented metric without a
// check here fails the test.
func TestRegistrarMetricsMove(t *testing.T) {
	const ttl = 30 * time.Second
	r := newRegistrar(t, ttl, true)
	acme := r.addMember("acme")
	val := newNode(t, "validator", "10.1.0.3")
	tx := newNode(t, "tx", "10.1.0.4")

	register := func(cred string, n *node, seq uint64, want int) {
		t.Helper()
		code, b := r.do("POST", "/v1/nodes", cred, n.body(t, seq))
		if code != want {
			t.Fatalf("registering %s: %d %s, want %d", n.role, code, b, want)
		}
	}
	get := func(ss samples, name string, match ...string) float64 {
		v, _ := ss.sum(name, match...)
		return v
	}
	delta := func(before, after samples, name string, match ...string) float64 {
		return get(after, name, match...) - get(before, name, match...)
	}

	checks := []check{
		{"consortium_registrar_registrations_total", "a node registers", func(before samples) (bool, string) {
			register(acme, val, 1, 201)
			d := delta(before, r.metrics(), "consortium_registrar_registrations_total")
			return d == 1, fmt.Sprint("+", d)
		}},
		{"consortium_registrar_http_requests_total", "a registration is answered 201", func(before samples) (bool, string) {
			register(acme, tx, 1, 201)
			d := delta(before, r.metrics(), "consortium_registrar_http_requests_total", "route", "POST /v1/nodes", "code", "201")
			return d == 1, fmt.Sprint("+", d)
		}},
		{"consortium_registrar_http_request_duration_seconds", "a request is timed", func(before samples) (bool, string) {
			r.do("GET", "/v1/nodes", acme, nil)
			d := delta(before, r.metrics(), "consortium_registrar_http_request_duration_seconds_count", "route", "GET /v1/nodes")
			return d == 1, fmt.Sprint("+", d)
		}},
		{"consortium_registrar_index", "a registration changes the directory", func(before samples) (bool, string) {
			register(acme, newNode(t, "tx", "10.1.0.5"), 1, 201)
			d := delta(before, r.metrics(), "consortium_registrar_index")
			return d == 1, fmt.Sprint("+", d)
		}},
		{"consortium_registrar_nodes", "acme's nodes are live", func(before samples) (bool, string) {
			after := r.metrics()
			v, tx := get(after, "consortium_registrar_nodes", "member", "acme", "role", "validator", "state", "live"), get(after, "consortium_registrar_nodes", "member", "acme", "role", "tx", "state", "live")
			return v == 1 && tx == 2, fmt.Sprintf("validator %v, tx %v", v, tx)
		}},
		{"consortium_registrar_registrations_refused_total", "a replayed record with other content", func(before samples) (bool, string) {
			moved := *val
			moved.ip = "10.1.0.99"
			register(acme, &moved, 1, 409)
			d := delta(before, r.metrics(), "consortium_registrar_registrations_refused_total")
			return d == 1, fmt.Sprint("+", d)
		}},
		{"consortium_registrar_renewals_total", "a lease is renewed", func(before samples) (bool, string) {
			code, b := r.do("POST", "/v1/nodes/"+val.id+"/renew", acme, httpapi.RenewRequest{Status: &registry.Status{Head: 5, Peers: 1}})
			if code != 200 {
				t.Fatalf("renew: %d %s", code, b)
			}
			d := delta(before, r.metrics(), "consortium_registrar_renewals_total")
			return d == 1, fmt.Sprint("+", d)
		}},
		{"consortium_registrar_peer_cache_hits_total", "a peer set is asked for twice", func(before samples) (bool, string) {
			for range 2 {
				if code, b := r.do("GET", "/v1/nodes/"+val.id+"/peers", acme, nil); code != 200 {
					t.Fatalf("peers: %d %s", code, b)
				}
			}
			d := delta(before, r.metrics(), "consortium_registrar_peer_cache_hits_total")
			return d >= 1, fmt.Sprint("+", d)
		}},
		{"consortium_registrar_watchers", "an agent waits on a blocking query", func(before samples) (bool, string) {
			if w := get(before, "consortium_registrar_watchers"); w != 0 {
				return false, fmt.Sprint("watchers before: ", w)
			}
			index := uint64(get(before, "consortium_registrar_index"))
			done := make(chan int, 1)
			go func() {
				code, _ := r.do("GET", fmt.Sprintf("/v1/nodes/%s/peers?index=%d&wait=30s", val.id, index), acme, nil)
				done <- code
			}()
			testutil.EventuallyTrue(t, 5*time.Second, "watchers == 1 during the blocking query", func() bool {
				return get(r.metrics(), "consortium_registrar_watchers") == 1
			})
			// A new tx node changes the validator's set: the query returns.
			register(acme, newNode(t, "tx", "10.1.0.6"), 1, 201)
			select {
			case code := <-done:
				if code != 200 {
					return false, fmt.Sprint("blocking query answered ", code)
				}
			case <-time.After(5 * time.Second):
				return false, "blocking query did not return"
			}
			w := get(r.metrics(), "consortium_registrar_watchers")
			return w == 0, fmt.Sprint("watchers after: ", w)
		}},
		{"consortium_registrar_expiries_total", "the leases run out", func(before samples) (bool, string) {
			r.clock.Advance(ttl + time.Second)
			r.Registry.Reap()
			after := r.metrics()
			d := delta(before, after, "consortium_registrar_expiries_total")
			lapsed := get(after, "consortium_registrar_nodes", "member", "acme", "state", "lapsed")
			live := get(after, "consortium_registrar_nodes", "member", "acme", "state", "live")
			return d == 4 && lapsed == 4 && live == 0, fmt.Sprintf("+%v expiries, %v lapsed, %v live", d, lapsed, live)
		}},
	}

	doc := documented(t)
	checked := map[string]bool{}
	for _, c := range checks {
		before := r.metrics()
		if !before.has(c.metric) && c.metric != "consortium_registrar_nodes" {
			t.Errorf("%s is not on /metrics", c.metric)
		}
		moved, detail := c.run(before)
		if !moved {
			t.Errorf("%s did not move when %s: %s", c.metric, c.event, detail)
		}
		if !r.metrics().has(c.metric) {
			t.Errorf("%s is not on /metrics after %s", c.metric, c.event)
		}
		checked[c.metric] = true
	}
	var missing []string
	for name, section := range doc {
		if section == "registrar" && !checked[name] {
			missing = append(missing, name)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("%s is documented but has no check here", m)
	}
	for _, family := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !r.metrics().has(family) {
			t.Errorf("%s is missing", family)
		}
	}
}
