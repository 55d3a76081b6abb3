package httpapi_test

import (
	"testing"
	"time"
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
	h.expect(h.do("DELETE", "/v1/members/beta", h.admin, nil), 200, "")
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
