package hatest

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	bin, err = build(dir)
	if err != nil {
		os.RemoveAll(dir)
		fmt.Fprintln(os.Stderr, "hatest:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles ./cmd/consortium from the module root into dir.
func build(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module")
	}
	path := filepath.Join(dir, "consortium")
	cmd := exec.Command("go", "build", "-o", path, "./cmd/consortium")
	cmd.Dir = filepath.Dir(gomod)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/consortium: %v\n%s", err, b)
	}
	return path, nil
}
