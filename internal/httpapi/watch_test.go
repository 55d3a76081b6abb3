package httpapi_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/registry"
)

// A blocking query returns as soon as a change is committed, not at its
// timeout.
func TestBlockingQueryWakesOnChange(t *testing.T) {
	h := newHarness(t, opts{})
	a, _ := consortium2(t, h)
	path := "/v1/nodes/" + a.val.id + "/peers"
	r := h.do("GET", path, a.cred, nil)
	etag, index := r.hdr.Get("ETag"), r.hdr.Get("X-Consortium-Index")

	type result struct {
		r   resp
		dur time.Duration
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		r := h.do("GET", path+"?index="+index+"&wait=60s", a.cred, nil, "If-None-Match", etag)
		done <- result{r, time.Since(start)}
	}()
	// Unrelated changes (another member's node, a renewal) do not wake it.
	time.Sleep(100 * time.Millisecond)
	h.mustRegister(h.addMember("gamma"), newNode(t, "validator", "10.3.0.1", ""))
	h.expect(h.do("POST", "/v1/nodes/"+a.tx.id+"/renew", a.cred, nil), 200, "")
	select {
	case res := <-done:
		t.Fatalf("woke without a change to its set: %d %s", res.r.status, res.r.body)
	case <-time.After(300 * time.Millisecond):
	}
	committed := time.Now()
	newTx := newNode(t, "tx", "10.1.0.77", "")
	h.mustRegister(a.cred, newTx)
	res := <-done
	if res.r.status != 200 {
		t.Fatalf("status %d %s", res.r.status, res.r.body)
	}
	var ps registry.PeerSet
	res.r.json(t, &ps)
	if !contains(ps.Static, "10.1.0.77") {
		t.Fatalf("answer lacks the new node: %v", ps.Static)
	}
	if lag := time.Since(committed); lag > 2*time.Second {
		t.Fatalf("watcher heard of the change after %v", lag)
	}
}

// With nothing changing, a blocking query ends at its wait with 304.
func TestBlockingQueryTimesOut(t *testing.T) {
	h := newHarness(t, opts{})
	a, _ := consortium2(t, h)
	path := "/v1/nodes/" + a.val.id + "/peers"
	r := h.do("GET", path, a.cred, nil)
	start := time.Now()
	r = h.do("GET", path+"?index="+r.hdr.Get("X-Consortium-Index")+"&wait=300ms", a.cred, nil, "If-None-Match", r.hdr.Get("ETag"))
	if r.status != http.StatusNotModified {
		t.Fatalf("status %d", r.status)
	}
	if d := time.Since(start); d < 300*time.Millisecond || d > 5*time.Second {
		t.Fatalf("returned after %v", d)
	}
}

// Watchers that never read their answers do not delay writers or the
// watchers that do read.
func TestDeadWatchersDoNotDelayWriters(t *testing.T) {
	h := newHarness(t, opts{})
	a, _ := consortium2(t, h)
	path := "/v1/nodes/" + a.val.id + "/peers"
	r := h.do("GET", path, a.cred, nil)
	etag, index := r.hdr.Get("ETag"), r.hdr.Get("X-Consortium-Index")
	addr := h.Addr
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// 200 raw connections send a blocking query and never read a byte.
	for i := 0; i < 200; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		fmt.Fprintf(c, "GET %s?index=%s&wait=60s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nIf-None-Match: %s\r\n\r\n", path, index, a.cred, etag)
	}
	// One well-behaved watcher.
	got := make(chan time.Time, 1)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET %s?index=%s&wait=60s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nIf-None-Match: %s\r\n\r\n", path, index, a.cred, etag)
	go func() {
		line, _ := bufio.NewReader(c).ReadString('\n')
		if strings.Contains(line, "200") {
			got <- time.Now()
		}
		close(got)
	}()
	time.Sleep(300 * time.Millisecond) // let every watcher park
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			h.mustRegister(a.cred, newNode(t, "tx", fmt.Sprintf("10.1.1.%d", i+1), ""))
		}(i)
	}
	wg.Wait()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("20 writes took %v with dead watchers parked", d)
	}
	select {
	case at, ok := <-got:
		if !ok {
			t.Fatal("live watcher got no 200")
		}
		if d := at.Sub(start); d > 5*time.Second {
			t.Fatalf("live watcher answered after %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("live watcher never answered")
	}
}

// With ?delta=1 a watcher holding an earlier answer gets what changed since
// (docs/api.md, "Deltas"), under the ETag of the full answer now; a tag the
// registrar does not know gets the full answer, and the current tag a 304.
func TestBlockingQueryAnswersADelta(t *testing.T) {
	h := newHarness(t, opts{})
	a, _ := consortium2(t, h)
	path := "/v1/nodes/" + a.val.id + "/peers"
	r := h.do("GET", path, a.cred, nil)
	etag, index := r.hdr.Get("ETag"), r.hdr.Get("X-Consortium-Index")
	done := make(chan resp, 1)
	go func() {
		done <- h.do("GET", path+"?index="+index+"&wait=60s&delta=1", a.cred, nil, "If-None-Match", etag)
	}()
	time.Sleep(100 * time.Millisecond)
	newTx := newNode(t, "tx", "10.1.0.77", "")
	h.mustRegister(a.cred, newTx)
	res := <-done
	h.expect(res, 200, "")
	dec := map[string]any{}
	res.json(t, &dec)
	for _, k := range []string{"index", "node", "since", "static_add", "static_remove", "bootnodes_add", "bootnodes_remove", "consensus_add", "consensus_remove"} {
		if _, ok := dec[k]; !ok {
			t.Fatalf("delta %s lacks %q", res.body, k)
		}
	}
	if _, ok := dec["static"]; ok {
		t.Fatalf("a delta carries the full set: %s", res.body)
	}
	// Every member of the body is one of the wire type's: clients decode it
	// as api.PeerDelta.
	var raw api.PeerDelta
	strict := json.NewDecoder(bytes.NewReader(res.body))
	strict.DisallowUnknownFields()
	if err := strict.Decode(&raw); err != nil {
		t.Fatalf("delta %s is not an api.PeerDelta: %v", res.body, err)
	}
	if len(raw.StaticAdd) != 1 || raw.StaticAdd[0] != enodeOf(t, newTx, newTx.ip) || len(raw.StaticRemove) != 0 {
		t.Fatalf("delta %s: want the new tx node added, nothing removed", res.body)
	}
	if fmt.Sprint(raw.Since) != index || res.hdr.Get("X-Consortium-Delta-Since") != index {
		t.Fatalf("delta since %d (header %q), want %s", raw.Since, res.hdr.Get("X-Consortium-Delta-Since"), index)
	}
	full := h.do("GET", path, a.cred, nil)
	if res.hdr.Get("ETag") != full.hdr.Get("ETag") || res.hdr.Get("X-Consortium-Index") != full.hdr.Get("X-Consortium-Index") {
		t.Fatalf("delta tagged %s at %s, full answer %s at %s", res.hdr.Get("ETag"), res.hdr.Get("X-Consortium-Index"), full.hdr.Get("ETag"), full.hdr.Get("X-Consortium-Index"))
	}
	if len(res.body) >= len(full.body) {
		t.Errorf("the delta (%d bytes) is not smaller than the full answer (%d)", len(res.body), len(full.body))
	}
	// The current tag: 304. An unknown one: the full answer.
	h.expect(h.do("GET", path+"?delta=1", a.cred, nil, "If-None-Match", full.hdr.Get("ETag")), 304, "")
	other := h.do("GET", path+"?delta=1", a.cred, nil, "If-None-Match", `"0123456789abcdef0123456789abcdef"`)
	h.expect(other, 200, "")
	if string(other.body) != string(full.body) {
		t.Fatalf("an unknown tag got %s, want the full answer", other.body)
	}
	// Bad uses.
	h.expect(h.do("GET", path+"?delta=2", a.cred, nil), 400, "bad_query")
	h.expect(h.do("GET", path+"?delta=1&format=toml", a.cred, nil), 400, "bad_query")
	h.expect(h.do("GET", "/v1/peers?role=tx&delta=1", a.cred, nil), 400, "bad_query")
}
