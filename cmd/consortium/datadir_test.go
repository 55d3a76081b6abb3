package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A data directory that exists with a mode open to others is made 0700,
// and the log says so.
func TestDataDirectoryMade0700(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o777) // past the umask
	addr := freePort(t)
	p := startProc(t, "registrar", "--listen", addr, "--data", dir)
	waitReady(t, "http://"+addr, nil)
	fi, err := os.Stat(dir)
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("data directory mode %v (%v), want 0700", fi.Mode().Perm(), err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(p.stderr.String(), "made it 0700") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning in the log:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A file where the directory should be is refused with a clear error.
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	var stderr bytes.Buffer
	e := &env{stdout: io.Discard, stderr: &stderr, getenv: func(string) string { return "" }}
	err = run(context.Background(), e, []string{"registrar", "--listen", "127.0.0.1:0", "--data", file})
	if err == nil || !strings.Contains(err.Error(), "data directory") {
		t.Fatalf("a file as data directory: %v", err)
	}
}
