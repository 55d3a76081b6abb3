package consensus

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	cmtcfg "github.com/cometbft/cometbft/config"
)

// TestDBReadAfterClose: a CometBFT goroutine that reads after the node
// closed its stores finds nothing; pebble itself would panic.
func TestDBReadAfterClose(t *testing.T) {
	cc := cmtcfg.DefaultConfig()
	cc.SetRoot(t.TempDir())
	db, err := dbProvider(slog.New(slog.NewTextHandler(io.Discard, nil)))(&cmtcfg.DBContext{ID: "blockstore", Config: cc})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if v, err := db.Get([]byte("k")); err != nil || v != nil {
		t.Fatalf("Get after Close = %q, %v; want nothing, no error", v, err)
	}
	if ok, err := db.Has([]byte("k")); ok || err != nil {
		t.Fatalf("Has after Close = %v, %v", ok, err)
	}
	if err := db.Set([]byte("k"), []byte("v")); !errors.Is(err, errDBClosed) {
		t.Fatalf("Set after Close = %v, want errDBClosed", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
