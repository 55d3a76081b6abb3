package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
)

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not gzip: %v", err)
	}
	zr.Multistream(false) // one member, as any client reads it
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip (CRC and size are checked at the end): %v", err)
	}
	if _, err := zr.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("data after the gzip member: %v", err)
	}
	return out
}

// A client that accepts gzip gets every large answer compressed, and it
// decompresses to exactly the plain answer: for nodes whose own entry is
// the first of their group, the last, in the middle, near a chunk boundary
// of the group's cached compression, or absent; in every format; for a
// role's set and the seed's endpoints. Small answers and 304s are not
// compressed.
func TestGzipAnswers(t *testing.T) {
	h := newHarness(t, opts{})
	cred := h.addMember("big")
	var nodes []*testNode
	for i := range 150 {
		n := newNode(t, "tx", fmt.Sprintf("10.1.%d.%d", i/200, i%200+1), "")
		if i%3 == 0 {
			n.cmt = 26656
		}
		h.mustRegister(cred, n)
		nodes = append(nodes, n)
	}
	boot := newNode(t, "bootnode", "10.2.0.1", "")
	h.mustRegister(cred, boot)
	small := h.addMember("small")
	lone := newNode(t, "tx", "10.3.0.1", "")
	h.mustRegister(small, lone)

	gzipped := 0
	check := func(name, path, cred string) {
		t.Helper()
		plain := h.do("GET", path, cred, nil)
		h.expect(plain, 200, "")
		wantGzip := len(plain.body) >= 1024 // httpapi's gzipMin
		z := h.do("GET", path, cred, nil, "Accept-Encoding", "br, gzip;q=0.8")
		h.expect(z, 200, "")
		if z.hdr.Get("ETag") != plain.hdr.Get("ETag") || z.hdr.Get("Vary") != "Accept-Encoding" {
			t.Errorf("%s: ETag %s Vary %q, plain ETag %s", name, z.hdr.Get("ETag"), z.hdr.Get("Vary"), plain.hdr.Get("ETag"))
		}
		if z.hdr.Get("Content-Length") != strconv.Itoa(len(z.body)) {
			t.Errorf("%s: Content-Length %s for %d bytes", name, z.hdr.Get("Content-Length"), len(z.body))
		}
		if !wantGzip {
			if z.hdr.Get("Content-Encoding") != "" || !bytes.Equal(z.body, plain.body) {
				t.Errorf("%s: %d bytes compressed (%q), want them plain", name, len(plain.body), z.hdr.Get("Content-Encoding"))
			}
			return
		}
		if z.hdr.Get("Content-Encoding") != "gzip" {
			t.Fatalf("%s: Content-Encoding %q for %d bytes", name, z.hdr.Get("Content-Encoding"), len(plain.body))
		}
		gzipped++
		if got := gunzip(t, z.body); !bytes.Equal(got, plain.body) {
			t.Fatalf("%s: gunzipped %d bytes differ from the plain %d", name, len(got), len(plain.body))
		}
		if len(z.body) >= len(plain.body) {
			t.Errorf("%s: %d bytes compressed to %d", name, len(plain.body), len(z.body))
		}
		// q=0 refuses gzip.
		if r := h.do("GET", path, cred, nil, "Accept-Encoding", "gzip;q=0"); r.hdr.Get("Content-Encoding") != "" {
			t.Errorf("%s: gzip;q=0 answered with %q", name, r.hdr.Get("Content-Encoding"))
		}
		// A holder of the answer gets a 304 without a body either way.
		nm := h.do("GET", path, cred, nil, "Accept-Encoding", "gzip", "If-None-Match", plain.hdr.Get("ETag"))
		if nm.status != 304 || len(nm.body) != 0 {
			t.Errorf("%s: If-None-Match with gzip: %d, %d bytes", name, nm.status, len(nm.body))
		}
	}
	var picks []int
	for i := range nodes {
		if i < 3 || i > len(nodes)-4 || i%7 == 0 {
			picks = append(picks, i)
		}
	}
	for _, f := range []string{"json", "toml", "bootnodes", "enr"} {
		for _, i := range picks {
			check(fmt.Sprintf("node %d format=%s", i, f), "/v1/nodes/"+nodes[i].id+"/peers?format="+f, cred)
		}
		check("bootnode format="+f, "/v1/nodes/"+boot.id+"/peers?format="+f, cred)
		check("role tx format="+f, "/v1/peers?role=tx&format="+f, cred)
	}
	check("a small set", "/v1/nodes/"+lone.id+"/peers", small)
	check("/staticenodes", "/staticenodes?network=big", cred)
	check("/enodes", "/enodes?network=big", cred)
	// At a new index, many nodes' first compressed answers race to build
	// the group's chunks (run with -race).
	h.mustRegister(cred, newNode(t, "tx", "10.1.9.1", ""))
	want := map[string][]byte{}
	for _, i := range picks {
		want[nodes[i].id] = h.do("GET", "/v1/nodes/"+nodes[i].id+"/peers", cred, nil).body
	}
	var wg sync.WaitGroup
	for _, i := range picks {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", h.URL+"/v1/nodes/"+nodes[i].id+"/peers", nil)
			req.Header.Set("Authorization", "Bearer "+cred)
			req.Header.Set("Accept-Encoding", "gzip")
			res, err := h.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			zr, err := gzip.NewReader(res.Body)
			if err != nil {
				t.Error(err)
				return
			}
			if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, want[nodes[i].id]) {
				t.Errorf("node %d, concurrent: %v, %d bytes, want %d", i, err, len(got), len(want[nodes[i].id]))
			}
		})
	}
	wg.Wait()
	if gzipped < 3*len(picks) {
		t.Fatalf("%d answers compressed, want the large ones (at least %d)", gzipped, 3*len(picks))
	}
}
