// Package gethtest starts real geth processes on loopback for integration
// tests of other packages.
//
// It exists because geth's peering behaviour (what admin_addPeer really does,
// how config.toml is read, what a restart forgets) is only trustworthy when
// observed on a real binary (docs/architecture.md, "consortium agent run"). Every
// node it starts is bound to 127.0.0.1, never dials the mainnet bootnodes,
// never asks a router for a port mapping, runs in its own process group, and
// is killed with that group when the test ends, also when the test fails or
// the test binary dies (Pdeathsig).
//
// Binaries come from scripts/build-geth.sh (a cache directory) or from the
// environment (GETH_117, GETH_113); a missing binary skips the test unless
// CONSORTIUM_REQUIRE_GETH is set, which CI should do.
package gethtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The geth versions the project runs and tests.
const (
	// V117 is the newest release, used for peering.
	V117 = "v1.17.10"
	// V113 is the last release that seals Clique blocks, used for the reference chain.
	V113 = "v1.13.15"
)

// RequireEnv makes a missing geth binary a test failure instead of a skip.
const RequireEnv = "CONSORTIUM_REQUIRE_GETH"

// CacheEnv overrides the cache directory scripts/build-geth.sh builds into.
const CacheEnv = "CONSORTIUM_CACHE"

var versionRE = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)$`)

// parseVersion splits "v1.17.10" into its numbers.
func parseVersion(version string) (major, minor, patch int, err error) {
	m := versionRE.FindStringSubmatch(version)
	if m == nil {
		return 0, 0, 0, fmt.Errorf("gethtest: %q is not a geth release version like %s", version, V117)
	}
	major, _ = strconv.Atoi(m[1])
	minor, _ = strconv.Atoi(m[2])
	patch, _ = strconv.Atoi(m[3])
	return major, minor, patch, nil
}

// EnvVar is the environment variable that points at a binary for version's
// release line: GETH_117 for v1.17.x, GETH_113 for v1.13.x.
func EnvVar(version string) string {
	major, minor, _, err := parseVersion(version)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("GETH_%d%d", major, minor)
}

// CachePath is where scripts/build-geth.sh puts version's binary.
func CachePath(version string) string {
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	dir := os.Getenv(CacheEnv)
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		dir = filepath.Join(home, ".cache", "consortium")
	}
	return filepath.Join(dir, "geth-"+version, "geth")
}

// checked remembers binaries whose version was confirmed, so each one runs
// `geth version` once per test binary.
var checked sync.Map // path+"\x00"+version -> error

// Binary returns the path of a geth binary of version.
//
// The environment variable EnvVar(version) wins over the cache; it may point
// at any patch release of the same line. The binary must report the version
// it is expected to be: a GETH_117 that is really 1.13 would make every test
// result a lie. Without a binary the test is skipped, or fails when
// CONSORTIUM_REQUIRE_GETH is set.
func Binary(t testing.TB, version string) string {
	t.Helper()
	major, minor, patch, err := parseVersion(version)
	if err != nil {
		t.Fatal(err)
	}
	env := EnvVar(version)
	path, fromEnv := os.Getenv(env), true
	if path == "" {
		path, fromEnv = CachePath(version), false
	}
	if st, err := os.Stat(path); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
		msg := fmt.Sprintf("geth %s not found at %s: run scripts/build-geth.sh %s or set %s", version, path, version, env)
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("%s (%s is set, so this is a failure)", msg, RequireEnv)
		}
		t.Skipf("%s (set %s=1 to make this a failure)", msg, RequireEnv)
	}
	want := fmt.Sprintf("%d.%d.%d", major, minor, patch)
	if fromEnv {
		want = fmt.Sprintf("%d.%d.", major, minor)
	}
	key := path + "\x00" + want
	v, ok := checked.Load(key)
	if !ok {
		v, _ = checked.LoadOrStore(key, checkVersion(path, want))
	}
	if err, _ := v.(error); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkVersion runs `geth version` and looks for "Version: <want>".
func checkVersion(path, want string) error {
	out, err := exec.Command(path, "version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("gethtest: %s version: %v\n%s", path, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Version:"); ok {
			if strings.HasPrefix(strings.TrimSpace(v), want) {
				return nil
			}
			return fmt.Errorf("gethtest: %s is geth %s, want %s", path, strings.TrimSpace(v), want)
		}
	}
	return fmt.Errorf("gethtest: %s version printed no version line:\n%s", path, out)
}
