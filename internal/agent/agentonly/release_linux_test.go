//go:build linux

package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// rssFile is this process's RssFile in bytes (/proc/self/status).
func rssFile(t *testing.T) int64 {
	t.Helper()
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`RssFile:\s+(\d+) kB`).FindSubmatch(raw)
	if m == nil {
		t.Fatalf("no RssFile in /proc/self/status")
	}
	n, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return n << 10
}

func TestReleaseBinaryPages(t *testing.T) {
	before := rssFile(t)
	released, err := releaseBinaryPages()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFile(t)
	t.Logf("RssFile %.1f MiB -> %.1f MiB, released %.1f MiB", float64(before)/(1<<20), float64(after)/(1<<20), float64(released)/(1<<20))
	if released < 1<<20 || after > before-1<<20 {
		t.Errorf("released %d bytes; RssFile %d -> %d", released, before, after)
	}
	// The process runs on: its code and data come back as used.
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("still here", "n", 1)
	if !bytes.Contains(buf.Bytes(), []byte(`"msg":"still here"`)) {
		t.Errorf("logged %q", buf.String())
	}
}

func TestReleaseLoop(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); releaseLoop(ctx, log, time.Millisecond, 20*time.Millisecond) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-done
	if n := bytes.Count(logs.Bytes(), []byte("released the binary's resident pages")); n < 2 {
		t.Errorf("%d releases in 100 ms, want at least 2:\n%s", n, logs.String())
	}
}

func TestParseSmaps(t *testing.T) {
	raw := []byte(`00400000-00a71000 r-xp 00000000 fe:00 123 /usr/local/bin/consortium agent
Size:               6588 kB
Rss:                6588 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
01367000-013d3000 rw-p 00f66000 fe:00 123 /usr/local/bin/consortium agent
Rss:                 364 kB
Anonymous:            12 kB
7ffd893b2000-7ffd893d3000 rw-p 00000000 00:00 0
Rss:                  16 kB
`)
	got := parseSmaps(raw)
	want := []mapping{
		{0x400000, 0xa71000, "r-xp", "/usr/local/bin/consortium agent", 6588 << 10, 0},
		{0x1367000, 0x13d3000, "rw-p", "/usr/local/bin/consortium agent", 364 << 10, 12 << 10},
		{0x7ffd893b2000, 0x7ffd893d3000, "rw-p", "", 16 << 10, 0},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mapping %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
