package hatest

import (
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/consortium/consortium/internal/proctest"
)

// bin is the consortium binary every test runs, built once by TestMain
// without -race (only the test binary carries the race detector).
var bin string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("hatest: skipped in -short mode (real etcd and registrar processes)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "hatest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "hatest:", err)
		os.Exit(1)
	}
	bin, err = proctest.Build(dir)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "hatest:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
