package devnet

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The state file is replaced whole (other commands read it while the
// devnet runs), readable by others on the host (0644), with nothing left
// beside it.
func TestWriteStateReadsBack(t *testing.T) {
	dir := t.TempDir()
	for _, pid := range []int{4242, 0} {
		want := State{PID: pid, Started: time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC), Registrar: "http://127.0.0.1:8545",
			Nodes: []NodeState{{Member: "a", Name: "a-validator", Role: "validator", ID: "ab", Enode: "enode://ab@127.0.0.1:30303"}}}
		if err := writeState(dir, want); err != nil {
			t.Fatal(err)
		}
		got, err := ReadState(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got.PID != want.PID || !got.Started.Equal(want.Started) || len(got.Nodes) != 1 || got.Nodes[0] != want.Nodes[0] {
			t.Fatalf("read back %+v, want %+v", got, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, StateFile)); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("state file: %v, %v", fi, err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Fatalf("%d entries beside the state file, want it alone", len(es))
	}
}
