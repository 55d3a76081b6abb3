package dnstree

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/p2p/dnsdisc"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/miekg/dns"
)

// TestClientVerifiesEveryTree: go-ethereum's own dnsdisc client, over real
// UDP (TCP after a truncated reply), syncs every member's tree: the root's
// signature against the URL's key, every entry against its hash, the link
// subtree; it finds exactly the member's records, at the seq we signed.
// After a change it finds the new set at a higher seq.
func TestClientVerifiesEveryTree(t *testing.T) {
	src := newFakeSource()
	sizes := map[string]int{"empty": 0, "one": 1, "few": 5, "many": 40}
	for m, n := range sizes {
		nodes := []*enode.Node{}
		for i := range n {
			nodes = append(nodes, node(t, fmt.Sprintf("10.%d.0.%d", len(m), i+1), 30303+i, 20*(i%8)))
		}
		src.set(m, nodes)
	}
	tr := newTrees(t, src)
	if err := tr.Update(); err != nil {
		t.Fatal(err)
	}
	_, addr := serve(t, tr, ServerConfig{RatePerSecond: 1e6, RateBurst: 1e6})

	for _, edns := range []bool{false, true} {
		c := client(resolver{server: addr, edns: edns})
		for m := range sizes {
			verify(t, c, tr, src, m)
		}
	}

	// A change: "few" loses a node and gains two; the client sees the new
	// set at a higher seq (a fresh client: geth's would after its recheck).
	before, _ := tr.Tree("few")
	nodes, _, _ := src.MemberRecords("few")
	nodes = append(nodes[1:], node(t, "10.3.1.1", 40000, 0), node(t, "10.3.1.2", 40001, 0))
	src.set("few", nodes)
	tr.Update()
	got := verify(t, client(resolver{server: addr}), tr, src, "few")
	if got.Seq() <= uint(before.Seq) {
		t.Errorf("seq after the change %d, before %d", got.Seq(), before.Seq)
	}
}

// verify syncs member's tree with a dnsdisc client and checks it against
// the source and our own rendering.
func verify(t *testing.T, c interface {
	SyncTree(string) (*dnsdisc.Tree, error)
}, tr *Trees, src *fakeSource, member string) *dnsdisc.Tree {
	t.Helper()
	url := tr.URL(member)
	got, err := c.SyncTree(url)
	if err != nil {
		t.Fatalf("%s: dnsdisc SyncTree(%s): %v", member, url, err)
	}
	want, _, _ := src.MemberRecords(member)
	if !slices.Equal(ids(got.Nodes()), ids(want)) {
		t.Errorf("%s: client found %d nodes, want %d", member, len(got.Nodes()), len(want))
	}
	v, err := tr.Tree(member)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(got.Seq()) != v.Seq {
		t.Errorf("%s: client's seq %d, ours %d", member, got.Seq(), v.Seq)
	}
	if txt := got.ToTXT(v.Zone); !maps.Equal(txt, v.Records) {
		t.Errorf("%s: the client's tree renders %d records, ours %d", member, len(txt), len(v.Records))
	}
	return got
}

// TestFlood: 10,000 queries from one address as fast as it can send them
// get at most the burst plus the rate's worth of answers; the rest are
// dropped unread; another address is answered meanwhile.
func TestFlood(t *testing.T) {
	src := newFakeSource()
	src.set("a", []*enode.Node{node(t, "10.1.0.1", 30303, 0)})
	tr := newTrees(t, src)
	tr.Update()
	const rate, burst = 50, 100
	srv, addr := serve(t, tr, ServerConfig{RatePerSecond: rate, RateBurst: burst})

	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	q := new(dns.Msg)
	q.SetQuestion("a.nodes.example.", dns.TypeTXT)
	answered := make(chan int, 1) // the reader need not wait for a test that gave up
	go func() {
		n := 0
		buf := make([]byte, 2048)
		for {
			conn.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := conn.Read(buf); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					answered <- n
					return
				}
				continue // ECONNREFUSED and such on loopback: not an answer
			}
			n++
		}
	}()
	start := time.Now()
	const total = 10_000
	for i := range total {
		q.Id = uint16(i)
		b, _ := q.Pack()
		conn.Write(b)
		if i%100 == 99 {
			time.Sleep(time.Millisecond) // let the kernel buffers drain, so drops are the server's
		}
	}
	sent := time.Since(start)
	// Another source is not limited by the flood.
	if _, err := (resolver{server: addr, from: "127.0.0.2"}).LookupTXT(context.Background(), "a.nodes.example"); err != nil {
		t.Errorf("a second address during the flood: %v", err)
	}
	// The reader stops after a second with no answer.
	n := testutil.Wait(t, stopLimit, "the flood's answers to stop", answered)
	elapsed := time.Since(start)
	st := srv.Stats()
	max := burst + int(rate*elapsed.Seconds()) + 1
	t.Logf("flood: %d queries sent in %v; %d answered, %d dropped by the limit (bound %d); stats %+v",
		total, sent.Round(time.Millisecond), n, st.RateLimited, max, st)
	if n > max {
		t.Errorf("%d answers to one address, bound %d", n, max)
	}
	if st.RateLimited < total-uint64(max)-uint64(total/10) { // the kernel may drop a few itself
		t.Errorf("only %d dropped by the limiter", st.RateLimited)
	}
}

func TestHandler(t *testing.T) {
	src := newFakeSource()
	src.set("a", []*enode.Node{node(t, "10.1.0.1", 30303, 0)})
	tr := newTrees(t, src)
	tr.Update()
	mux := http.NewServeMux()
	mux.Handle("GET /v1/members/{name}/tree", tr.Handler(func(w http.ResponseWriter, r *http.Request, err error) {
		if errors.Is(err, ErrNoTree) {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		http.Error(w, err.Error(), 500)
	}))
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/members/a/tree", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	var v TreeView
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	want, _ := tr.Tree("a")
	if v.Zone != "a.nodes.example" || v.URL != tr.URL("a") || v.Seq != want.Seq || !maps.Equal(v.Records, want.Records) {
		t.Errorf("got %+v, want %+v", v, want)
	}
	rec = httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/members/zz/tree", nil))
	if rec.Code != 404 {
		t.Errorf("unknown member: status %d", rec.Code)
	}
}

// TestClientFindsLaterRecord: a record added after a client synced the
// tree reaches it at its next root check (geth's dnsdisc: RecheckInterval,
// 30 min by default; 300 ms here), through the same iterator geth feeds
// its dialer from.
func TestClientFindsLaterRecord(t *testing.T) {
	src := newFakeSource()
	first := node(t, "10.1.0.1", 30303, 0)
	src.set("a", []*enode.Node{first})
	tr := newTrees(t, src)
	tr.Update()
	_, addr := serve(t, tr, ServerConfig{RatePerSecond: 1e6, RateBurst: 1e6})
	const recheck = 300 * time.Millisecond
	c := dnsdisc.NewClient(dnsdisc.Config{Resolver: resolver{server: addr}, RecheckInterval: recheck, RateLimit: 10000})
	it, err := c.NewIterator(tr.URL("a"))
	if err != nil {
		t.Fatal(err)
	}
	found := make(chan enode.ID, 16)
	go func() {
		defer close(found)
		for it.Next() {
			found <- it.Node().ID()
		}
	}()
	defer func() {
		it.Close()
		drained := make(chan struct{})
		go func() {
			for range found {
			}
			close(drained)
		}()
		testutil.Wait(t, stopLimit, "the iterator's reader to stop after Close", drained)
	}()
	await := func(id enode.ID, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		timeout := time.After(within)
		for {
			select {
			case got := <-found:
				if got == id {
					return time.Since(start)
				}
			case <-timeout:
				t.Fatalf("node %s not found within %v", id.TerminalString(), within)
			}
		}
	}
	await(first.ID(), 5*time.Second)
	later := node(t, "10.1.0.2", 30303, 0)
	src.set("a", []*enode.Node{first, later})
	tr.Update()
	took := await(later.ID(), 10*recheck+5*time.Second)
	t.Logf("a record added later found after %v (RecheckInterval %v)", took.Round(time.Millisecond), recheck)
}

// TestTCPConnectionBounds: one source holds at most MaxTCPConnsPerSource
// connections; the rest are closed unread, and other sources still get in.
func TestTCPConnectionBounds(t *testing.T) {
	src := newFakeSource()
	src.set("a", []*enode.Node{node(t, "10.1.0.1", 30303, 0)})
	tr := newTrees(t, src)
	tr.Update()
	srv, addr := serve(t, tr, ServerConfig{MaxTCPConnsPerSource: 4, RatePerSecond: 1e6, RateBurst: 1e6})
	q := new(dns.Msg)
	q.SetQuestion("a.nodes.example.", dns.TypeTXT)
	var conns []*dns.Conn
	for range 20 {
		c, err := dns.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	served := 0
	for _, c := range conns {
		c.SetDeadline(time.Now().Add(2 * time.Second))
		if err := c.WriteMsg(q); err != nil {
			continue
		}
		if in, err := c.ReadMsg(); err == nil && len(in.Answer) == 1 {
			served++
		}
	}
	if served != 4 {
		t.Errorf("%d of 20 connections from one source served, want 4", served)
	}
	other := &dns.Client{Net: "tcp", Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}}}
	if in, _, err := other.Exchange(q, addr); err != nil || len(in.Answer) != 1 {
		t.Errorf("another source over TCP: %v, %v", in, err)
	}
	// A closed connection frees its place.
	conns[0].Close()
	testutil.Eventually(t, waitLimit, "a TCP place freed by a closed connection", func() error {
		c, err := dns.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Second))
		c.WriteMsg(q)
		in, err := c.ReadMsg()
		if err != nil {
			return err
		}
		if len(in.Answer) != 1 {
			return fmt.Errorf("%d answers", len(in.Answer))
		}
		return nil
	})
	if st := srv.Stats(); st.TCPRefused < 16 {
		t.Errorf("TCPRefused %d, want at least 16", st.TCPRefused)
	}
}
