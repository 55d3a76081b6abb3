package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/consortiuminit"
)

// runInitIn runs `consortium init args...` in-process and returns what it
// printed, its error, and the manifest it wrote (zero when it wrote none).
func runInitIn(t *testing.T, args ...string) (string, consortiuminit.Manifest, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := &env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	err := run(context.Background(), e, append([]string{"init"}, args...))
	var m consortiuminit.Manifest
	for i, a := range args {
		if a == "--out" {
			if b, rerr := os.ReadFile(filepath.Join(args[i+1], consortiuminit.ManifestFile)); rerr == nil {
				if jerr := json.Unmarshal(b, &m); jerr != nil {
					t.Fatal(jerr)
				}
			}
		}
	}
	return stdout.String() + stderr.String(), m, err
}

func TestInitConsensus(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	out := func(name string) string { return filepath.Join(dir, name) }

	for _, tc := range []struct {
		name  string
		args  []string
		want  consortiuminit.Consensus
		usage string // a usage error (exit 2) whose message holds this; "" for success
	}{
		{"default is bft", []string{"--members", "a,b", "--out", out("bft")}, consortiuminit.ConsensusBFT, ""},
		{"bft", []string{"--consensus", "bft", "--members", "a", "--out", out("bft2")}, consortiuminit.ConsensusBFT, ""},
		{"clique", []string{"--consensus", "clique", "--period", "3", "--members", "a", "--out", out("clique")}, consortiuminit.ConsensusClique, ""},
		{"unknown", []string{"--consensus", "pos", "--members", "a", "--out", out("x1")}, "", `use "bft"`},
		{"empty", []string{"--consensus", "", "--members", "a", "--out", out("x2")}, "", `use "bft"`},
		{"period with bft", []string{"--period", "3", "--members", "a", "--out", out("x3")}, "", "--period is Clique's"},
		{"zero period with clique", []string{"--consensus", "clique", "--period", "0", "--members", "a", "--out", out("x4")}, "", "1 second or more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			printed, m, err := runInitIn(t, tc.args...)
			if tc.usage != "" {
				if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tc.usage) {
					t.Fatalf("err = %v, want a usage error with %q", err, tc.usage)
				}
				if _, serr := os.Stat(tc.args[len(tc.args)-1]); serr == nil {
					t.Errorf("a refused init still wrote %s", tc.args[len(tc.args)-1])
				}
				return
			}
			if err != nil {
				t.Fatalf("init: %v\n%s", err, printed)
			}
			if m.Consensus != tc.want {
				t.Errorf("manifest consensus %q, want %q", m.Consensus, tc.want)
			}
			if tc.want == consortiuminit.ConsensusClique && m.Period != 3 {
				t.Errorf("clique period %d, want 3", m.Period)
			}
			if tc.want == consortiuminit.ConsensusBFT && (!strings.Contains(printed, "BFT") || m.CometGenesis == "") {
				t.Errorf("bft init printed:\n%s\nmanifest %+v", printed, m)
			}
		})
	}
}
