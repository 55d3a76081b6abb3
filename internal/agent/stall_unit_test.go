package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// headClient is fakeClient with a head the test sets.
type headClient struct {
	fakeClient
	head atomic.Uint64
}

func (h *headClient) HeadBlock(context.Context) (uint64, error) { return h.head.Load(), nil }

func TestStallAfterDefaults(t *testing.T) {
	cases := []struct {
		name   string
		cfg    time.Duration
		info   ethclient.NodeInfo
		expect time.Duration
	}{
		{"clique, 1 s period: geth's forced sync and 5 s", 0, ethclient.NodeInfo{Clique: true, CliquePeriod: time.Second}, 15 * time.Second},
		{"clique, 2 s period: geth's forced sync and 5 s", 0, ethclient.NodeInfo{Clique: true, CliquePeriod: 2 * time.Second}, 15 * time.Second},
		{"clique, 5 s period", 0, ethclient.NodeInfo{Clique: true, CliquePeriod: 5 * time.Second}, 17 * time.Second},
		{"clique, 15 s period", 0, ethclient.NodeInfo{Clique: true, CliquePeriod: 15 * time.Second}, 47 * time.Second},
		{"clique, period 0 (seals on transactions)", 0, ethclient.NodeInfo{Clique: true}, 30 * time.Second},
		{"not clique", 0, ethclient.NodeInfo{}, 30 * time.Second},
		{"configured", 3 * time.Second, ethclient.NodeInfo{Clique: true, CliquePeriod: 2 * time.Second}, 3 * time.Second},
		{"off", -1, ethclient.NodeInfo{Clique: true, CliquePeriod: 2 * time.Second}, -1},
	}
	for _, c := range cases {
		a := &Agent{cfg: Config{StallAfter: c.cfg}}
		if got := a.stallAfter(c.info); got != c.expect {
			t.Errorf("%s: %v, want %v", c.name, got, c.expect)
		}
	}
}

// TestStallStep drives the stall guard's decisions one step at a time:
// when it reports the node's status out of turn, when it reads the
// registrar's node list, and which peer it reconnects.
func TestStallStep(t *testing.T) {
	mk := func(seed byte) *enode.Node {
		k, err := crypto.ToECDSA(append(make([]byte, 31), seed))
		if err != nil {
			t.Fatal(err)
		}
		return enode.NewV4(&k.PublicKey, net.IPv4(10, 0, 0, seed), 30303, 30303)
	}
	p1, p2 := mk(1), mk(2)
	var mu sync.Mutex
	heads := map[*enode.Node]uint64{p1: 12, p2: 10}
	var looks atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/nodes" {
			http.NotFound(w, r)
			return
		}
		looks.Add(1)
		mu.Lock()
		defer mu.Unlock()
		var out api.NodeList
		for n, h := range heads {
			out.Nodes = append(out.Nodes, api.NodeView{ID: n.ID().String(), Live: true, Status: &api.Status{Head: h}})
		}
		json.NewEncoder(w).Encode(out)
	}))
	defer srv.Close()
	rc, err := registrarclient.New(registrarclient.Config{URL: srv.URL, Credential: "x"})
	if err != nil {
		t.Fatal(err)
	}
	fc := &headClient{fakeClient: fakeClient{connected: map[enode.ID]*enode.Node{p1.ID(): p1, p2.ID(): p2}}}
	fc.head.Store(10)
	k, _ := crypto.GenerateKey()
	a, err := New(Config{Client: fc, Registrar: rc, Key: k, Role: "tx", StateDir: t.TempDir(),
		StallAfter: 8 * time.Second, StallCheck: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a.applied = []*enode.Node{p1, p2}
	ctx := context.Background()
	step := func(what string, wantReport bool, wantLooks int32, wantMax time.Duration) {
		t.Helper()
		again, report := a.stallStep(ctx, ethclient.NodeInfo{}, false)
		if report != wantReport || looks.Load() != wantLooks || again <= 0 || again > wantMax {
			t.Fatalf("%s: again %v report %v looks %d; want again in (0, %v], report %v, looks %d",
				what, again, report, looks.Load(), wantMax, wantReport, wantLooks)
		}
	}
	past := func(d time.Duration) { a.stall.since = a.stall.since.Add(-d) }

	step("first look at the head", false, 0, 8*time.Second)
	step("head put for less than the stall time", false, 0, 8*time.Second)
	past(8 * time.Second)
	step("stuck: report once, read the node list, reconnect p1", true, 1, 2*time.Second)
	if got, want := fc.took(), []string{"remove " + p1.URLv4(), "add " + p1.URLv4()}; !slices.Equal(got, want) {
		t.Fatalf("calls %v, want %v", got, want)
	}
	step("still stuck: no second report, no read before the gap", false, 1, 2*time.Second)
	a.stall.lookAt = time.Now().Add(-time.Millisecond)
	step("next look: p1 was reconnected a moment ago, p2 is not ahead", false, 2, 2*time.Second)
	if got := fc.took(); len(got) != 0 {
		t.Fatalf("reconnected again: %v", got)
	}
	if gap := time.Until(a.stall.lookAt); gap < time.Second || gap > 2*time.Second {
		t.Fatalf("next read in %v, want 2s", gap)
	}
	// The gaps between reads then double (4, 8 s), up to the stall time.
	for _, want := range []time.Duration{4 * time.Second, 8 * time.Second, 8 * time.Second} {
		a.stall.lookAt = time.Now().Add(-time.Millisecond)
		n := looks.Load()
		step("another look", false, n+1, 2*time.Second)
		if gap := time.Until(a.stall.lookAt); gap < want-time.Second || gap > want {
			t.Fatalf("next read in %v, want %v", gap, want)
		}
	}
	// A peer reconnected a stall time ago may be reconnected again.
	a.stall.kicked[p1.ID()] = time.Now().Add(-8 * time.Second)
	a.stall.lookAt = time.Now().Add(-time.Millisecond)
	step("p1 again", false, looks.Load()+1, 2*time.Second)
	if got, want := fc.took(), []string{"remove " + p1.URLv4(), "add " + p1.URLv4()}; !slices.Equal(got, want) {
		t.Fatalf("calls %v, want p1 reconnected a second time", got)
	}
	n := looks.Load()
	fc.head.Store(12)
	step("the head moves again: report at once", true, n, 8*time.Second)
	step("moving: nothing to report", false, n, 8*time.Second)

	// A client restart at an unchanged head starts the clock again, even
	// when the head had been put longer than the stall time before.
	past(20 * time.Second)
	again, report := a.stallStep(ctx, ethclient.NodeInfo{}, true)
	if report || again != 8*time.Second || a.stall.stuck {
		t.Fatalf("after a restart: again %v, report %v, stuck %v; want a fresh 8 s", again, report, a.stall.stuck)
	}
	step("put for less than the stall time since the restart", false, n, 8*time.Second)
	fc.head.Store(13)
	step("the restarted node's head moves: report at once", true, n, 8*time.Second)
	step("moving on: nothing to report", false, n, 8*time.Second)
}
