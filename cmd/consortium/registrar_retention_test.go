package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/testutil"
)

func TestRetentionFlagRefusesANegativeDuration(t *testing.T) {
	var out, errb bytes.Buffer
	e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	err := run(context.Background(), e, []string{"registrar", "--retention", "-1h", "--data", t.TempDir(), "--listen", "127.0.0.1:0"})
	if err == nil || !strings.Contains(err.Error(), "--retention") {
		t.Fatalf("--retention -1h: %v", err)
	}
}

// A node that stops for good leaves the node list once its lapsed record is
// older than --retention, with a "purged" event (issue 24).
func TestRegistrarPurgesLapsedRecordsAfterTheRetention(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	url := "http://" + addr
	startProc(t, "registrar", "--listen", addr, "--data", dir, "--ttl", "1s", "--retention", "2s")
	waitReady(t, url, nil)
	admin := readCred(t, dir)
	ctx := context.Background()
	ac, _ := registrarclient.New(registrarclient.Config{URL: url, Credential: admin})
	mc, err := ac.AddMember(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := registrarclient.New(registrarclient.Config{URL: url, Credential: mc.Credential})
	k := testutil.Key(t)
	id := testutil.ID(k)
	if _, err := c.Register(ctx, httpapi.RegisterRequest{Role: "tx", ENR: testutil.ENR(t, k, 1, "10.0.0.1", 30303, 30303)}); err != nil {
		t.Fatal(err)
	}
	get := func(path string, v any) {
		t.Helper()
		req, _ := http.NewRequest("GET", url+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		if err := json.NewDecoder(res.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	listed := func() (bool, bool) {
		var nl struct {
			Nodes []struct {
				ID   string `json:"id"`
				Live bool   `json:"live"`
			} `json:"nodes"`
		}
		get("/v1/nodes", &nl)
		for _, n := range nl.Nodes {
			if n.ID == id {
				return true, n.Live
			}
		}
		return false, false
	}
	start := time.Now()
	sawLapsed := false
	for {
		in, live := listed()
		if in && !live {
			sawLapsed = true
		}
		if !in {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the node is still listed (live %v) %s after its registration, with --ttl 1s --retention 2s", live, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if el := time.Since(start); !sawLapsed || el < 3*time.Second {
		t.Fatalf("the record left the list after %s (seen lapsed: %v); want it listed lapsed for the retention first", el, sawLapsed)
	}
	var ev struct {
		Events []struct {
			Kind string `json:"kind"`
			Node string `json:"node"`
		} `json:"events"`
	}
	get("/v1/events", &ev)
	var kinds []string
	for _, e := range ev.Events {
		if e.Node == id {
			kinds = append(kinds, e.Kind)
		}
	}
	if strings.Join(kinds, ",") != "registered,expired,purged" {
		t.Fatalf("the node's events: %v, want registered, expired, purged", kinds)
	}
}
