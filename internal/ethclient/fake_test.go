package ethclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/rpc"
)

// fakeGeth answers JSON-RPC over HTTP with canned bodies: for error paths
// and answers a real geth cannot be made to give (eth_syncing in progress,
// malformed responses). Behaviour of real geth is tested in geth_test.go.
type fakeGeth struct {
	mu      sync.Mutex
	answers map[string]string // method -> `"result":...` or `"error":{...}`
	status  int               // HTTP status, 200 when 0
	delay   time.Duration
	params  map[string][]json.RawMessage
}

func (f *fakeGeth) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     json.RawMessage   `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	answer, ok := f.answers[req.Method]
	status, delay := f.status, f.delay
	if f.params == nil {
		f.params = map[string][]json.RawMessage{}
	}
	f.params[req.Method] = req.Params
	f.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if status != 0 {
		http.Error(w, "nope", status)
		return
	}
	if !ok {
		answer = `"error":{"code":-32601,"message":"the method ` + req.Method + ` does not exist/is not available"}`
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,` + answer + `}`))
}

func dialFake(t *testing.T, f *fakeGeth) *Geth {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	g, err := Dial(context.Background(), Config{Endpoint: srv.URL, CallTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.Close)
	return g
}

func testNode(t *testing.T) *enode.Node {
	t.Helper()
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return enode.NewV4(&key.PublicKey, []byte{127, 0, 0, 1}, 30303, 30303)
}

// assertOurs checks that err is one of ours, of the given kind, and that no
// rpc library type leaks through it.
func assertOurs(t *testing.T, err, kind error) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("error %v (%T), want %v", err, err, kind)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Errorf("error %T is not an *ethclient.Error", err)
	}
	var rpcErr rpc.Error
	var httpErr rpc.HTTPError
	if errors.As(err, &rpcErr) || errors.As(err, &httpErr) {
		t.Errorf("rpc library error leaks through %v", err)
	}
}

func TestSyncing(t *testing.T) {
	tests := []struct {
		name   string
		answer string
		want   bool
		err    error
	}{
		{"idle", `"result":false`, false, nil},
		{"syncing", `"result":{"currentBlock":"0x10","highestBlock":"0x20","startingBlock":"0x0"}`, true, nil},
		// What a fresh geth answers forever while its chain is at genesis.
		{"only indexing", `"result":{"currentBlock":"0x0","highestBlock":"0x0","startingBlock":"0x0","txIndexRemainingBlocks":"0x1"}`, false, nil},
		{"caught up, still indexing", `"result":{"currentBlock":"0x20","highestBlock":"0x20","txIndexRemainingBlocks":"0x5"}`, false, nil},
		{"object without blocks", `"result":{"syncedAccounts":"0x1"}`, false, ErrBadResponse},
		{"null", `"result":null`, false, ErrBadResponse},
		{"number", `"result":7`, false, ErrBadResponse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := dialFake(t, &fakeGeth{answers: map[string]string{"eth_syncing": tt.answer}})
			got, err := g.Syncing(context.Background())
			if tt.err != nil {
				assertOurs(t, err, tt.err)
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Syncing = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	n := testNode(t)
	tests := []struct {
		name string
		fake *fakeGeth
		call func(g *Geth) error
		want error
	}{
		{
			"admin API not enabled",
			&fakeGeth{},
			func(g *Geth) error { _, err := g.NodeInfo(context.Background()); return err },
			ErrMethodNotFound,
		},
		{
			"geth refuses the enode",
			&fakeGeth{answers: map[string]string{"admin_addPeer": `"error":{"code":-32000,"message":"invalid enode: invalid public key"}`}},
			func(g *Geth) error { return g.AddPeer(context.Background(), n) },
			ErrInvalidEnode,
		},
		{
			"other error answer",
			&fakeGeth{answers: map[string]string{"admin_removePeer": `"error":{"code":-32000,"message":"node stopped"}`}},
			func(g *Geth) error { return g.RemovePeer(context.Background(), n) },
			ErrRemote,
		},
		{
			"false answer",
			&fakeGeth{answers: map[string]string{"admin_addTrustedPeer": `"result":false`}},
			func(g *Geth) error { return g.AddTrustedPeer(context.Background(), n) },
			ErrRemote,
		},
		{
			"HTTP error status",
			&fakeGeth{status: http.StatusForbidden},
			func(g *Geth) error { _, err := g.HeadBlock(context.Background()); return err },
			ErrUnavailable,
		},
		{
			"block number not hex",
			&fakeGeth{answers: map[string]string{"eth_blockNumber": `"result":"zz"`}},
			func(g *Geth) error { _, err := g.HeadBlock(context.Background()); return err },
			ErrBadResponse,
		},
		{
			"peer with a broken enode",
			&fakeGeth{answers: map[string]string{"admin_peers": `"result":[{"id":"00","enode":"enode://nope"}]`}},
			func(g *Geth) error { _, err := g.Peers(context.Background()); return err },
			ErrBadResponse,
		},
		{
			"node info whose id does not match its enode",
			&fakeGeth{answers: map[string]string{"admin_nodeInfo": `"result":{"id":"` + testNode(t).ID().String() + `","enode":"` + n.URLv4() + `"}`}},
			func(g *Geth) error { _, err := g.NodeInfo(context.Background()); return err },
			ErrBadResponse,
		},
		{
			"nil node",
			&fakeGeth{answers: map[string]string{"admin_addPeer": `"result":true`}},
			func(g *Geth) error { return g.AddPeer(context.Background(), nil) },
			ErrInvalidEnode,
		},
		{
			"node without endpoint",
			&fakeGeth{answers: map[string]string{"admin_addPeer": `"result":true`}},
			func(g *Geth) error {
				return g.AddPeer(context.Background(), enode.NewV4(n.Pubkey(), nil, 0, 0))
			},
			ErrInvalidEnode,
		},
		{
			"call timeout",
			&fakeGeth{delay: 5 * time.Second, answers: map[string]string{"eth_blockNumber": `"result":"0x1"`}},
			func(g *Geth) error { _, err := g.HeadBlock(context.Background()); return err },
			ErrUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := dialFake(t, tt.fake)
			assertOurs(t, tt.call(g), tt.want)
		})
	}
}

func TestCallerDeadline(t *testing.T) {
	g := dialFake(t, &fakeGeth{delay: 5 * time.Second, answers: map[string]string{"eth_blockNumber": `"result":"0x1"`}})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := g.HeadBlock(ctx)
	assertOurs(t, err, ErrUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not match context.DeadlineExceeded", err)
	}
}

func TestPeerCallsSendEnodeURL(t *testing.T) {
	n := testNode(t)
	f := &fakeGeth{answers: map[string]string{
		"admin_addPeer": `"result":true`, "admin_removePeer": `"result":true`,
		"admin_addTrustedPeer": `"result":true`, "admin_removeTrustedPeer": `"result":true`,
	}}
	g := dialFake(t, f)
	ctx := context.Background()
	for method, call := range map[string]func(context.Context, *enode.Node) error{
		"admin_addPeer": g.AddPeer, "admin_removePeer": g.RemovePeer,
		"admin_addTrustedPeer": g.AddTrustedPeer, "admin_removeTrustedPeer": g.RemoveTrustedPeer,
	} {
		if err := call(ctx, n); err != nil {
			t.Errorf("%s: %v", method, err)
			continue
		}
		f.mu.Lock()
		params := f.params[method]
		f.mu.Unlock()
		var url string
		if len(params) != 1 || json.Unmarshal(params[0], &url) != nil || url != n.URLv4() {
			t.Errorf("%s sent %s, want [%q]", method, params, n.URLv4())
		}
	}
}

func TestDialMissingSocket(t *testing.T) {
	_, err := Dial(context.Background(), Config{Endpoint: filepath.Join(t.TempDir(), "geth.ipc")})
	assertOurs(t, err, ErrUnavailable)
	_, err = Dial(context.Background(), Config{})
	assertOurs(t, err, ErrUnavailable)
}
