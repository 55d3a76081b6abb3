package registrarclient

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/testutil"
)

// blocker answers peer queries with a wait only when its release channel
// closes or the client goes away; it reports each waiter on waiting.
type blocker struct {
	waiting chan struct{}
}

func (b *blocker) handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("wait") == "" {
		healthy(w, r)
		return
	}
	select {
	case b.waiting <- struct{}{}:
	default:
	}
	<-r.Context().Done()
}

// A blocking query whose replica dies mid-wait fails within 2 s, without
// being re-sent elsewhere; the next query goes to the next URL with the
// caller's ETag and index.
func TestBlockingQueryMovesOnWhenItsReplicaDies(t *testing.T) {
	b := &blocker{waiting: make(chan struct{}, 1)}
	r1, r2, r3 := newReplica(t, b.handle), newReplica(t, healthy), newReplica(t, healthy)
	c := newClient(t, r1.url(), r2.url(), r3.url())
	// A first fetch leaves a kept-alive connection, which the watch reuses:
	// when it breaks, Go's transport sends the GET again on a new one, whose
	// dial is refused. The watch was sent all the same.
	if _, err := c.Peers(t.Context(), "n1"); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.WatchPeers(t.Context(), "n1", 6, `"set-6"`, time.Minute)
		errc <- err
	}()
	testutil.Wait(t, time.Minute, "the watch to reach the first replica", b.waiting)
	died := time.Now()
	r1.srv.Listener.Close() // dies as a process does: no new connections, then none open
	r1.srv.CloseClientConnections()
	var err error
	select {
	case err = <-errc:
	case <-time.After(2 * time.Second):
		t.Fatal("the watch outlived its replica by 2 s")
	}
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("err %v, want ErrUnreachable", err)
	}
	t.Logf("failed %v after the replica died: %v", time.Since(died), err)
	if got := hits(r1, r2, r3); got[0] != 2 || got[1] != 0 || got[2] != 0 {
		t.Fatalf("hits %v, want [2 0 0]: a blocking query was re-sent inside the client", got)
	}
	if c.URL() != r2.url() {
		t.Fatalf("current URL %s, want %s", c.URL(), r2.url())
	}
	p, err := c.WatchPeers(t.Context(), "n1", 6, `"set-6"`, time.Minute)
	if err != nil || p.NotModified || p.Index != 7 || p.ETag != `"set-7"` || len(p.Static) != 1 {
		t.Fatalf("re-issued watch: %+v %v", p, err)
	}
	q, _ := r2.lastRequest()
	if q.Header.Get("If-None-Match") != `"set-6"` || q.URL.Query().Get("index") != "6" || q.URL.Query().Get("wait") != "1m0s" {
		t.Fatalf("re-issued watch reached the next replica as %s with If-None-Match %q", q.URL, q.Header.Get("If-None-Match"))
	}
	if p, err := c.WatchPeers(t.Context(), "n1", 7, `"set-7"`, time.Minute); err != nil || !p.NotModified || p.Index != 7 {
		t.Fatalf("unchanged set: %+v %v", p, err)
	}
}

// A blocking query answered 503 moves the client on and returns at once;
// one that cannot connect goes to the next URL within the call.
func TestBlockingQueryFailures(t *testing.T) {
	r1, r2 := newReplica(t, answer(503, "store_unavailable")), newReplica(t, healthy)
	c := newClient(t, r1.url(), r2.url())
	if _, err := c.WatchPeers(t.Context(), "n1", 6, `"set-6"`, time.Minute); !IsStatus(err, 503) {
		t.Fatalf("err %v, want the 503", err)
	}
	if got := hits(r1, r2); got[0] != 1 || got[1] != 0 || c.URL() != r2.url() {
		t.Fatalf("hits %v, current %s", got, c.URL())
	}

	r2 = newReplica(t, healthy)
	c = newClient(t, deadURL(t), r2.url())
	if p, err := c.WatchPeers(t.Context(), "n1", 6, `"set-6"`, time.Minute); err != nil || p.Index != 7 {
		t.Fatalf("refused first URL: %+v %v", p, err)
	}
	if c.URL() != r2.url() {
		t.Fatalf("current URL %s, want %s", c.URL(), r2.url())
	}
}
