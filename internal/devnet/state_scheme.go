package devnet

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Crash-safe geth state on the BFT chain.
//
// geth v1.17's default state scheme (path) keeps the state of recent
// blocks in memory and writes it when a 64 MB buffer fills or at a clean
// stop. A devnet block changes a few storage slots, so that buffer never
// fills: a geth killed with SIGKILL (or by the OOM killer) came back at
// genesis, and its consensus node replayed the whole chain through the
// Engine API before the node took part again. So the BFT devnet makes and
// runs every geth with --state.scheme hash --gcmode archive: each block's
// state is on disk once geth imported it, and a killed geth comes back at
// its height. On a chain of small blocks keeping every state costs little.
//
// geth refuses to open a database with a scheme other than the one it was
// made with ("incompatible state scheme"), so a data directory made by an
// earlier devnet, with geth's default, keeps its scheme: the devnet starts
// that geth without the flags (geth then uses the scheme it finds) and
// says so once. The marker file below tells the two apart; the devnet
// writes it before `geth init`, so every data directory made since has it.

// stateSchemeFile, beside a node's geth-data, says the data directory was
// made with crashSafeFlags.
const stateSchemeFile = "state-scheme"

// crashSafeFlags make geth write each block's state as it imports it.
var crashSafeFlags = []string{"--state.scheme", "hash", "--gcmode", "archive"}

// schemeMarker is the node's stateSchemeFile.
func (n *gethNode) schemeMarker() string {
	return filepath.Join(filepath.Dir(n.dataDir), stateSchemeFile)
}

// hasChain reports whether the node's data directory holds a chain.
func (n *gethNode) hasChain() bool {
	_, err := os.Stat(filepath.Join(n.dataDir, "geth", "chaindata"))
	return err == nil
}

// legacyState reports whether the node's geth holds a chain made before
// the devnet ran BFT geth with crashSafeFlags (no marker): that geth runs
// on with the scheme it has. Clique geth (v1.13, hash scheme by default)
// is never legacy.
func (n *gethNode) legacyState() (bool, error) {
	if n.env.mode != BFT || !n.hasChain() {
		return false, nil
	}
	b, err := os.ReadFile(n.schemeMarker())
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w (%s: %v)", ErrNodeStart, n.spec.Label(), err)
	}
	if s := strings.TrimSpace(string(b)); s != "hash" {
		return false, fmt.Errorf("%w (%s: %s says %q, want \"hash\"; remove the node's data directory %s to make it again)",
			ErrNodeStart, n.spec.Label(), n.schemeMarker(), s, filepath.Dir(n.dataDir))
	}
	return false, nil
}

// initFlags are the flags of `geth init` for a new data directory; on the
// BFT chain they write the marker first.
func (n *gethNode) initFlags() ([]string, error) {
	if n.env.mode != BFT {
		return nil, nil
	}
	if err := os.MkdirAll(filepath.Dir(n.schemeMarker()), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(n.schemeMarker(), []byte("hash\n"), 0o644); err != nil {
		return nil, fmt.Errorf("%w (%s: %v)", ErrNodeStart, n.spec.Label(), err)
	}
	return crashSafeFlags[:2], nil // --gcmode is not init's
}

// stateFlags are the state flags of the node's (BFT) geth: crashSafeFlags,
// or none on a legacy data directory.
func (n *gethNode) stateFlags() ([]string, error) {
	legacy, err := n.legacyState()
	if err != nil || legacy {
		return nil, err
	}
	return crashSafeFlags, nil
}

// warnLegacyState says, in one line, which nodes run on data directories
// of an earlier devnet, what that means, and what to do about it.
func (d *Devnet) warnLegacyState(nodes []*gethNode) {
	var legacy []string
	for _, n := range nodes {
		if old, err := n.legacyState(); err == nil && old {
			legacy = append(legacy, n.spec.Label())
		}
	}
	if len(legacy) == 0 {
		return
	}
	d.out.printf("warning    geth state of %s was made by an earlier devnet with geth's default scheme (path) and is kept: "+
		"such a geth killed with -9 comes back at genesis and its consensus node replays the chain; "+
		"for crash-safe state (--state.scheme hash --gcmode archive) start a new consortium in another --dir",
		strings.Join(legacy, ", "))
}
