package agent

import (
	"context"
	"crypto/ecdsa"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/reconcile"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// The decisions of a key rotation, without processes: which key file
// contents make the agent take on the client's new ID, and what it then
// forgets and keeps. TestNodeKeyRotationWithGeth runs it with real geth.
func TestRotate(t *testing.T) {
	newKey, _ := crypto.GenerateKey()
	newID := enode.PubkeyToIDV4(&newKey.PublicKey)
	other, _ := crypto.GenerateKey()
	tests := []struct {
		name    string
		file    func(dir string) string // the KeyFile to configure ("" none)
		wantErr string
	}{
		{"no key file: stop, as before", func(string) string { return "" }, "give both the same --nodekey"},
		{"key file missing", func(dir string) string { return filepath.Join(dir, "absent") }, "reading"},
		{"key file holds a third key", func(dir string) string { return saveKey(t, dir, other) }, "holds node " + enode.PubkeyToIDV4(&other.PublicKey).String()},
		{"key file holds the client's new key", func(dir string) string { return saveKey(t, dir, newKey) }, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newUnitAgent(t, &fakeClient{}, Config{KeyFile: tc.file(t.TempDir())})
			old, oldKey := a.nodeID(), a.nodeKey()
			a.registered, a.index, a.etag, a.seq = true, 42, `"x"`, 1<<62
			a.since = reconcile.Since{Wanted: map[enode.ID]time.Time{old: time.Unix(1, 0)}}
			err := a.rotate(newID)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("rotate: %v, want an error with %q", err, tc.wantErr)
				}
				if a.nodeID() != old || !a.registered || len(a.retired) != 0 {
					t.Fatalf("a refused rotation changed the agent: ID %s registered %v retired %v", a.nodeID(), a.registered, a.retired)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if a.nodeID() != newID || a.ID() != newID || a.Health().NodeID != newID.String() {
				t.Errorf("ID %s, health %s; want %s", a.nodeID(), a.Health().NodeID, newID)
			}
			if a.nodeKey().D.Cmp(newKey.D) != 0 {
				t.Error("the agent does not sign with the new key")
			}
			if a.seq <= 1<<62 {
				t.Errorf("seq %d: want one above the old record's", a.seq)
			}
			if a.registered || a.index != 0 || a.etag != "" {
				t.Errorf("registered %v index %d etag %q: want a registration and a fresh query", a.registered, a.index, a.etag)
			}
			if len(a.retired) != 1 || a.retired[0] != old {
				t.Errorf("retired %v, want the old ID %s", a.retired, old)
			}
			if len(a.since.Wanted) != 0 {
				t.Errorf("since-times kept across the rotation: %v", a.since.Wanted)
			}
			// Back to the old key before its record was deleted: that ID is
			// ours again and must not be deleted; the other one must.
			if err := crypto.SaveECDSA(a.cfg.KeyFile, oldKey); err != nil {
				t.Fatal(err)
			}
			seq := a.seq
			if err := a.rotate(old); err != nil {
				t.Fatal(err)
			}
			if len(a.retired) != 1 || a.retired[0] != newID || a.seq <= seq {
				t.Errorf("rotated back: retired %v (want only %s), seq %d after %d", a.retired, newID, a.seq, seq)
			}
		})
	}
}

func saveKey(t *testing.T, dir string, k *ecdsa.PrivateKey) string {
	p := filepath.Join(dir, "nodekey")
	if err := crypto.SaveECDSA(p, k); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRemoveRetired: the old record is deleted once; a registrar that does
// not have it (404) or refuses (403) ends the attempt, one that does not
// answer (503) leaves it for the next call.
func TestRemoveRetired(t *testing.T) {
	for _, tc := range []struct {
		status int
		keep   bool
	}{{200, false}, {404, false}, {403, false}, {503, true}} {
		var mu sync.Mutex
		var got []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			got = append(got, r.Method+" "+r.URL.Path)
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(tc.status)
			if tc.status == 200 {
				w.Write([]byte(`{"id":"x","removed":true}`))
			} else {
				w.Write([]byte(`{"error":"e","code":"c"}`))
			}
		}))
		a := newUnitAgent(t, &fakeClient{}, Config{})
		rc, err := registrarclient.New(registrarclient.Config{URL: srv.URL, Credential: "m.x"})
		if err != nil {
			t.Fatal(err)
		}
		a.cfg.Registrar = rc
		k, _ := crypto.GenerateKey()
		old := enode.PubkeyToIDV4(&k.PublicKey)
		a.retired = []enode.ID{old}
		a.removeRetired(context.Background())
		srv.Close()
		if len(got) == 0 || got[0] != "DELETE /v1/nodes/"+old.String() {
			t.Errorf("status %d: requests %v, want DELETE of the old ID", tc.status, got)
		}
		if kept := len(a.retired) == 1; kept != tc.keep {
			t.Errorf("status %d: old ID kept for another attempt: %v, want %v", tc.status, kept, tc.keep)
		}
	}
}
