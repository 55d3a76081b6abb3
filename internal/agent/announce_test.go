package agent

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/testutil"
)

// TestAnnounceBoundsEachCall: a registration the registrar never answers
// (a connection a network cut left behind) must not stop the
// announcements: the call is given up after announceCallTimeout and sent
// again.
func TestAnnounceBoundsEachCall(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select { // the first registration hangs until the test ends
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(201)
		json.NewEncoder(w).Encode(map[string]any{"id": "b0", "ttl_seconds": 30})
	}))
	defer srv.Close()
	defer close(release)
	rc, err := registrarclient.New(registrarclient.Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Announce(ctx, rc, "bootnode", func() string { return "enr:-x" }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	defer func() { cancel(); testutil.Wait(t, time.Minute, "Announce to return after cancel", done) }()
	deadline := time.Now().Add(announceCallTimeout + 10*time.Second)
	for calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the announcement was not sent again within %v of a registration that never answered", announceCallTimeout+10*time.Second)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
