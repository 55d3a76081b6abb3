package chainfollow

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cometbft/cometbft/crypto/ed25519"

	"github.com/consortium/consortium/internal/governance"
	"github.com/consortium/consortium/internal/registry"
)

func cm(names ...string) []registry.ChainMember {
	var out []registry.ChainMember
	for _, n := range names {
		out = append(out, registry.ChainMember{Name: n})
	}
	return out
}

func TestAgree(t *testing.T) {
	abc, ab := cm("a", "b", "c"), cm("a", "b")
	down := errors.New("connection refused")
	for _, tc := range []struct {
		name    string
		answers []Answer
		want    []registry.ChainMember
		height  uint64
	}{
		{"one endpoint is trusted alone", []Answer{{Height: 7, Members: abc}}, abc, 7},
		{"one endpoint down", []Answer{{Err: down}}, nil, 0},
		{"two of three agree; the lowest height of theirs", []Answer{{Height: 9, Members: ab}, {Height: 8, Members: abc}, {Height: 10, Members: ab}}, ab, 9},
		{"one of three answers: no majority", []Answer{{Height: 9, Members: ab}, {Err: down}, {Err: down}}, nil, 0},
		{"two of four is not a majority", []Answer{{Height: 9, Members: ab}, {Height: 9, Members: ab}, {Height: 9, Members: abc}, {Err: down}}, nil, 0},
		{"three of four", []Answer{{Height: 9, Members: ab}, {Height: 9, Members: ab}, {Height: 11, Members: ab}, {Err: down}}, ab, 9},
		{"a hash makes another list", []Answer{{Height: 9, Members: []registry.ChainMember{{Name: "a", CredHash: "x"}}}, {Height: 9, Members: cm("a")}}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, h, err := Agree(tc.answers)
			if tc.want == nil {
				if !errors.Is(err, ErrNoMajority) {
					t.Fatalf("Agree = %v, %v; want ErrNoMajority", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) || h != tc.height {
				t.Fatalf("Agree = %v at %d, %v; want %v at %d", got, h, err, tc.want, tc.height)
			}
		})
	}
}

func TestParseURLs(t *testing.T) {
	got, err := ParseURLs(" 127.0.0.1:26657, https://rpc.b.example:443/ ")
	if err != nil || !reflect.DeepEqual(got, []string{"http://127.0.0.1:26657", "https://rpc.b.example:443"}) {
		t.Fatalf("ParseURLs = %v, %v", got, err)
	}
	for _, bad := range []string{"", ",", "ftp://x:1", "http://"} {
		if _, err := ParseURLs(bad); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseURLs(%q) = %v; want ErrConfig", bad, err)
		}
	}
}

// state is a governance state of members names, e carrying a credential
// hash when it is among them.
func state(t testing.TB, names ...string) *governance.State {
	t.Helper()
	var ms []governance.Member
	for _, n := range names {
		m := governance.Member{Name: n, PubKey: ed25519.GenPrivKeyFromSecret([]byte(n)).PubKey().(ed25519.PubKey), Power: 10}
		if n == "e" {
			h := sha256.Sum256([]byte("e"))
			m.CredHash = h[:]
		}
		ms = append(ms, m)
	}
	s, err := governance.NewState("chain", ms, governance.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func answerJSON(s *governance.State, height uint64) []byte {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": -1, "result": map[string]any{"response": map[string]any{
		"code": 0, "value": base64.StdEncoding.EncodeToString(s.Marshal()), "height": fmt.Sprint(height)}}})
	return b
}

// endpoint is a fake CometBFT RPC serving a settable answer.
type endpoint struct {
	srv  *httptest.Server
	body atomic.Pointer[[]byte]
}

func newEndpoint(t *testing.T) *endpoint {
	e := &endpoint{}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/abci_query" || r.URL.Query().Get("path") != `"/governance/state"` {
			http.Error(w, "wrong query "+r.URL.String(), 400)
			return
		}
		w.Write(*e.body.Load())
	}))
	t.Cleanup(e.srv.Close)
	return e
}

func (e *endpoint) set(b []byte) { e.body.Store(&b) }

type sink struct {
	mu    sync.Mutex
	calls [][]registry.ChainMember
}

func (s *sink) SyncChainMembers(_ context.Context, ms []registry.ChainMember) (registry.ChainSync, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, ms)
	return registry.ChainSync{}, nil
}

// Poll applies what a majority of real-looking endpoints answer, once per
// change, carries the credential hash, and never goes back to an older
// list that a lagging majority answers at a lower height.
func TestPoll(t *testing.T) {
	eps := []*endpoint{newEndpoint(t), newEndpoint(t), newEndpoint(t)}
	var urls []string
	for _, e := range eps {
		urls = append(urls, e.srv.URL)
		e.set(answerJSON(state(t, "a", "b", "c", "d"), 10))
	}
	s := &sink{}
	f, err := New(Config{URLs: urls}, s)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	poll := func() error { return f.Poll(ctx) }
	if err := poll(); err != nil {
		t.Fatal(err)
	}
	if err := poll(); err != nil || len(s.calls) != 1 {
		t.Fatalf("an unchanged list applied again: %d calls, %v", len(s.calls), err)
	}
	// d removed and e added at 12 on one node: no majority yet.
	eps[0].set(answerJSON(state(t, "a", "b", "c", "e"), 12))
	eps[1].set([]byte(`{"jsonrpc":"2.0","id":-1,"error":{"code":-32603,"message":"Internal error","data":"down"}}`))
	if err := poll(); !errors.Is(err, ErrNoMajority) || len(s.calls) != 1 {
		t.Fatalf("one new answer of three: %v, %d calls", err, len(s.calls))
	}
	eps[2].set(answerJSON(state(t, "a", "b", "c", "e"), 13))
	if err := poll(); err != nil || len(s.calls) != 2 {
		t.Fatalf("two of three: %v, %d calls", err, len(s.calls))
	}
	last := s.calls[1]
	if len(last) != 4 || last[3].Name != "e" || len(last[3].CredHash) != 64 || last[0].CredHash != "" {
		t.Fatalf("applied %+v", last)
	}
	// Two nodes replaying from behind answer the old list at a lower
	// height: not applied.
	eps[0].set(answerJSON(state(t, "a", "b", "c", "d"), 11))
	eps[1].set(answerJSON(state(t, "a", "b", "c", "d"), 11))
	if err := poll(); err != nil || len(s.calls) != 2 {
		t.Fatalf("a lagging majority rolled the list back: %v, %d calls", err, len(s.calls))
	}
	// A state that fails governance's checks is a bad answer, not a list.
	eps[0].set([]byte(`{"result":{"response":{"code":0,"value":"AAAA","height":"20"}}}`))
	eps[1].set([]byte(`{"result":{"response":{"code":0,"value":"AAAA","height":"20"}}}`))
	if err := poll(); !errors.Is(err, ErrNoMajority) {
		t.Fatalf("garbage states: %v", err)
	}
}

func FuzzDecodeAnswer(f *testing.F) {
	f.Add(answerJSON(state(f, "a", "e"), 3))
	f.Add([]byte(`{"result":{"response":{"code":0,"value":"","height":"1"}}}`))
	f.Add([]byte(`{"error":{"message":"x"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ms, err := DecodeAnswer(b)
		if err != nil {
			if !errors.Is(err, ErrBadAnswer) {
				t.Fatalf("error %v is not ErrBadAnswer", err)
			}
			return
		}
		if len(ms) == 0 {
			t.Fatalf("accepted a state with no members at %d", h)
		}
	})
}
