package devnet

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/consortiuminit"
)

func schemeNode(t *testing.T, mode Consensus, label string) *gethNode {
	t.Helper()
	member, name, _ := strings.Cut(label, "/")
	e := &env{dir: t.TempDir(), ipcDir: t.TempDir(), mode: mode, basePort: 40000, log: slog.New(slog.DiscardHandler)}
	return newGethNode(e, nodeSpec{Member: member, Node: consortiuminit.Node{Name: name}}, nil)
}

// makeChain stands for what `geth init` leaves: a chaindata directory.
func makeChain(t *testing.T, n *gethNode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(n.dataDir, "geth", "chaindata"), 0o755); err != nil {
		t.Fatal(err)
	}
}

func TestStateFlagsNewDataDir(t *testing.T) {
	n := schemeNode(t, BFT, "a/validator-1")
	init, err := n.initFlags()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(init, []string{"--state.scheme", "hash"}) {
		t.Errorf("geth init flags %q, want --state.scheme hash", init)
	}
	if b, err := os.ReadFile(n.schemeMarker()); err != nil || string(b) != "hash\n" {
		t.Errorf("marker %s: %q, %v", n.schemeMarker(), b, err)
	}
	makeChain(t, n)
	got, err := n.stateFlags()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []string{"--state.scheme", "hash", "--gcmode", "archive"}) {
		t.Errorf("geth flags %q, want --state.scheme hash --gcmode archive", got)
	}
	if old, _ := n.legacyState(); old {
		t.Errorf("a data directory made with the marker counts as legacy")
	}
}

func TestStateFlagsLegacyDataDir(t *testing.T) {
	// A chain without the marker: made by a devnet before crash-safe state.
	n := schemeNode(t, BFT, "b/tx-1")
	makeChain(t, n)
	if old, err := n.legacyState(); err != nil || !old {
		t.Fatalf("legacy %v, %v; want a legacy data directory", old, err)
	}
	if got, err := n.stateFlags(); err != nil || got != nil {
		t.Errorf("geth flags %q, %v on a legacy data directory, want none (geth keeps the scheme it finds)", got, err)
	}
	var out strings.Builder
	d := &Devnet{out: &printer{w: &out, start: time.Now()}}
	fresh := schemeNode(t, BFT, "a/tx-1")
	d.warnLegacyState([]*gethNode{fresh, n})
	line := out.String()
	if strings.Count(line, "\n") != 1 || !strings.Contains(line, "warning    geth state of b/tx-1 was made by an earlier devnet") ||
		strings.Contains(line, "a/tx-1") || !strings.Contains(line, "another --dir") {
		t.Errorf("warning line %q", line)
	}
	// Nothing to say when every directory is new or marked.
	out.Reset()
	d.warnLegacyState([]*gethNode{fresh})
	if out.Len() != 0 {
		t.Errorf("a warning with no legacy directory: %q", out.String())
	}
}

func TestStateFlagsBadMarker(t *testing.T) {
	n := schemeNode(t, BFT, "c/public-1")
	makeChain(t, n)
	if err := os.WriteFile(n.schemeMarker(), []byte("path\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := n.stateFlags()
	if err == nil || !strings.Contains(err.Error(), `says "path", want "hash"`) || !strings.Contains(err.Error(), "c/public-1") {
		t.Errorf("err %v, want one naming the node and the marker's content", err)
	}
}

func TestStateFlagsClique(t *testing.T) {
	n := schemeNode(t, Clique, "a/validator-1")
	if f, err := n.initFlags(); err != nil || f != nil {
		t.Errorf("clique init flags %q, %v; want none", f, err)
	}
	if _, err := os.Stat(n.schemeMarker()); err == nil {
		t.Errorf("a marker for a Clique geth")
	}
	makeChain(t, n)
	if old, err := n.legacyState(); err != nil || old {
		t.Errorf("a Clique data directory counts as legacy (%v, %v)", old, err)
	}
}
