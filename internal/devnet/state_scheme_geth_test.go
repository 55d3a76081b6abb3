//go:build linux

package devnet

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/gethtest"
)

// TestStateSchemeRealGeth shows, on geth v1.17.10, what the devnet's
// state flags rest on: a data directory the devnet makes now (initChain)
// holds hash-scheme state, which geth opens with the crash-safe flags; one
// made by an earlier devnet (geth init without flags: the path scheme)
// cannot be opened with them, and opens with the flags the devnet gives it
// (none). Each check is a `geth dump 0`, which opens the state as a
// running geth does.
func TestStateSchemeRealGeth(t *testing.T) {
	geth := gethtest.Binary(t, gethtest.V117)
	genesis, err := gethtest.DefaultGenesis(gethtest.V117)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	node := func(label string) *gethNode {
		n := schemeNode(t, BFT, label)
		n.env.geth = geth
		n.env.genesis = filepath.Join(n.env.dir, "genesis.json")
		if err := os.WriteFile(n.env.genesis, genesis, 0o644); err != nil {
			t.Fatal(err)
		}
		n.logPath = filepath.Join(n.env.dir, "geth.log")
		return n
	}
	dump := func(n *gethNode, flags ...string) (string, error) {
		args := append(append([]string{"--datadir", n.dataDir}, flags...), "dump", "0")
		out, err := exec.CommandContext(ctx, geth, args...).CombinedOutput()
		return string(out), err
	}

	fresh := node("a/validator-1")
	if err := fresh.initChain(ctx); err != nil {
		t.Fatal(err)
	}
	flags, err := fresh.stateFlags()
	if err != nil || len(flags) != 4 {
		t.Fatalf("state flags %q, %v on a new data directory", flags, err)
	}
	if out, err := dump(fresh, flags...); err != nil {
		t.Errorf("geth %s does not open the data directory initChain made: %v\n%s", strings.Join(flags, " "), err, out)
	}
	// Without any flag geth reads the scheme the directory has: hash.
	if out, err := dump(fresh); err != nil || !strings.Contains(out, "scheme=hash") {
		t.Errorf("initChain made no hash-scheme state (%v):\n%s", err, out)
	}

	old := node("b/validator-1")
	cmd := exec.CommandContext(ctx, geth, "init", "--datadir", old.dataDir, old.env.genesis)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("geth init: %v\n%s", err, out)
	}
	if out, err := dump(old, crashSafeFlags...); err == nil || !strings.Contains(out, "incompatible state scheme") {
		t.Errorf("geth opened a path-scheme directory with %s (%v); the devnet's legacy handling rests on its refusal:\n%s",
			strings.Join(crashSafeFlags, " "), err, out)
	}
	flags, err = old.stateFlags()
	if err != nil || flags != nil {
		t.Fatalf("state flags %q, %v on an earlier devnet's data directory, want none", flags, err)
	}
	if out, err := dump(old, flags...); err != nil || !strings.Contains(out, "scheme=path") {
		t.Errorf("geth does not open an earlier devnet's directory with the devnet's flags (%v):\n%s", err, out)
	}
}
