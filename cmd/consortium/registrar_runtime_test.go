package main

import (
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestMemoryLimit(t *testing.T) {
	for _, tc := range []struct {
		v        string
		conns    int
		want     int64
		usageErr bool
	}{
		{"auto", 4096, 56<<20 + 4096*48<<10, false},
		{"", 100, 56<<20 + 100*48<<10, false},
		{"off", 4096, math.MaxInt64, false},
		{"0", 4096, math.MaxInt64, false},
		{"80", 4096, 80 << 20, false},
		{"80MiB", 4096, 80 << 20, false},
		{"-1", 4096, 0, true},
		{"lots", 4096, 0, true},
		{"80GB", 4096, 0, true},
	} {
		got, err := memoryLimit(tc.v, tc.conns)
		if tc.usageErr {
			if !errors.Is(err, errUsage) {
				t.Errorf("%q: %v, want a usage error", tc.v, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: %d, %v; want %d", tc.v, got, err, tc.want)
		}
	}
}

// The profiler answers on its own listener only.
func TestServePprof(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	stop, err := servePprof(slog.New(slog.NewTextHandler(io.Discard, nil)), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr + "/debug/pprof/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), ".test") {
		t.Fatalf("cmdline: %d %q", resp.StatusCode, b)
	}
	if _, err := servePprof(slog.New(slog.NewTextHandler(io.Discard, nil)), addr); err == nil {
		t.Fatal("a second profiler on a taken address started")
	}
}
