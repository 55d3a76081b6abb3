package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/cliflags"
)

func TestMemoryDefaults(t *testing.T) {
	gogc, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(math.MaxInt64)
	t.Cleanup(func() { debug.SetGCPercent(gogc); debug.SetMemoryLimit(limit) })

	memoryDefaults(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != defaultGOGC {
		t.Errorf("GOGC %d, want %d", got, defaultGOGC)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != defaultMemLimit {
		t.Errorf("memory limit %d, want %d", got, defaultMemLimit)
	}
	// The environment's values stand (the runtime has read them already).
	env := map[string]string{"GOGC": "100", "GOMEMLIMIT": "off"}
	memoryDefaults(func(k string) string { return env[k] })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set: %d, want 100", got)
	}
	if got := debug.SetMemoryLimit(math.MaxInt64); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set: %d, want no limit", got)
	}
}

func TestRunUsage(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"CONSORTIUM_CREDENTIAL": "c"}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		args []string
		want error
		msg  string
	}{
		{nil, cliflags.ErrUsage, "--role and --rpc are required"},
		{[]string{"--role", "tx", "--rpc", "x", "run"}, cliflags.ErrUsage, `unexpected argument "run"`},
		{[]string{"--no-such-flag"}, cliflags.ErrUsage, "no-such-flag"},
		{[]string{"--role", "tx", "--rpc", "x", "--consensus-home", dir}, cliflags.ErrUsage, "consensus-home"},
	} {
		var stderr bytes.Buffer
		err := run(context.Background(), io.Discard, &stderr, getenv, tc.args)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error()+stderr.String(), tc.msg) {
			t.Errorf("%q: err %v, stderr %q; want %v with %q", tc.args, err, stderr.String(), tc.want, tc.msg)
		}
	}
	// Help, also after a flag, prints every flag with its environment
	// variable, reads nothing (no credential: CONSORTIUM_CREDENTIAL_FILE
	// points nowhere) and succeeds.
	for _, args := range [][]string{{"-h"}, {"--help"}, {"--role", "tx", "--help"}} {
		var stdout, stderr bytes.Buffer
		read := 0
		err := run(context.Background(), &stdout, &stderr, func(string) string { read++; return "" }, args)
		if err != nil || read > 0 {
			t.Errorf("%q: %v, %d environment variables read; want nil and none", args, err, read)
		}
		for _, want := range []string{"--rpc string", "--keystore string", "[$CONSORTIUM_REGISTRAR]", "[$CONSORTIUM_CREDENTIAL_FILE]", "[$CONSORTIUM_RPC]"} {
			if !strings.Contains(stdout.String(), want) {
				t.Errorf("%q: help lacks %q:\n%s", args, want, stdout.String())
			}
		}
	}
	// Flags after an argument are still flags: the argument is refused.
	if err := run(context.Background(), io.Discard, io.Discard, getenv, []string{"run", "--role", "tx", "--rpc", "x"}); !errors.Is(err, cliflags.ErrUsage) || !strings.Contains(err.Error(), `unexpected argument "run"`) {
		t.Errorf("run --role tx --rpc x: %v", err)
	}
	// Good flags and no client: run waits for it until ctx ends.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	args := []string{"--role", "tx", "--rpc", filepath.Join(dir, "geth.ipc"), "--nodekey", filepath.Join(dir, "nodekey"), "--listen", ""}
	if err := run(ctx, io.Discard, &bytes.Buffer{}, getenv, args); err != nil {
		t.Errorf("run with an ended ctx: %v", err)
	}
}
