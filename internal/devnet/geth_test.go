package devnet

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeGo writes a stand-in for the go command: it checks the arguments the
// build must use and "builds" geth by writing a script that prints version.
// For Clique it wants -checklinkname=0 and v1.13.15, for BFT v1.17.10 alone.
func fakeGo(t *testing.T, mode Consensus, version string, fail bool) string {
	t.Helper()
	dir := t.TempDir()
	script := `#!/bin/sh
[ "$1" = install ] || { echo "want install, got $1" >&2; exit 3; }
[ "$2" = -ldflags=-checklinkname=0 ] || { echo "want -checklinkname=0, got $2" >&2; exit 3; }
[ "$3" = github.com/ethereum/go-ethereum/cmd/geth@v1.13.15 ] || { echo "bad module $3" >&2; exit 3; }
[ -n "$GOBIN" ] || { echo "no GOBIN" >&2; exit 3; }
sleep 0.3
`
	if mode == BFT {
		script = `#!/bin/sh
[ "$1" = install ] || { echo "want install, got $1" >&2; exit 3; }
[ "$2" = github.com/ethereum/go-ethereum/cmd/geth@v1.17.10 ] || { echo "bad module $2" >&2; exit 3; }
[ -z "$3" ] || { echo "unexpected argument $3" >&2; exit 3; }
[ -n "$GOBIN" ] || { echo "no GOBIN" >&2; exit 3; }
sleep 0.3
`
	}
	if fail {
		script += "echo 'go: github.com/ethereum/go-ethereum@v1.13.15: no network' >&2\nexit 1\n"
	} else {
		script += "printf '#!/bin/sh\\necho Geth\\necho Version: " + version + "-stable\\n' > \"$GOBIN/geth\"\nchmod +x \"$GOBIN/geth\"\n"
	}
	p := filepath.Join(dir, "go")
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEnsureGethBuildsOnceAndReuses(t *testing.T) {
	old := progressEvery
	progressEvery = 100 * time.Millisecond
	t.Cleanup(func() { progressEvery = old })
	for _, tc := range []struct {
		mode    Consensus
		version string
	}{{Clique, "1.13.15"}, {BFT, "1.17.10"}} {
		t.Run(string(tc.mode), func(t *testing.T) { ensureGethOnce(t, tc.mode, tc.version) })
	}
}

func ensureGethOnce(t *testing.T, mode Consensus, version string) {
	cache := t.TempDir()
	var out bytes.Buffer
	cfg := Config{Consensus: mode, CacheDir: cache, GoTool: fakeGo(t, mode, version, false), Out: &out}.withDefaults()
	bin, err := ensureGeth(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if bin != GethPath(cache, mode) {
		t.Errorf("built %s, want %s", bin, GethPath(cache, mode))
	}
	for _, want := range []string{"building geth v" + version, "still building geth", "built geth v" + version} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	entries, _ := os.ReadDir(filepath.Dir(bin))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".build.") {
			t.Errorf("build directory %s left behind", e.Name())
		}
	}

	out.Reset()
	cfg.GoTool = fakeGo(t, mode, version, true) // would fail: must not be called
	if _, err := ensureGeth(context.Background(), cfg); err != nil || out.Len() != 0 {
		t.Errorf("second call: %v, output %q; want the cached binary, silently", err, out.String())
	}
}

func TestEnsureGethFailures(t *testing.T) {
	ctx := context.Background()
	t.Run("build fails", func(t *testing.T) {
		var out bytes.Buffer
		_, err := ensureGeth(ctx, Config{Consensus: Clique, CacheDir: t.TempDir(), GoTool: fakeGo(t, Clique, "", true), Out: &out}.withDefaults())
		if !errors.Is(err, ErrGethBuild) || !strings.Contains(err.Error(), "no network") || strings.Contains(err.Error(), "\n") {
			t.Errorf("err = %v; want ErrGethBuild naming the cause, on one line", err)
		}
	})
	t.Run("no go command", func(t *testing.T) {
		_, err := ensureGeth(ctx, Config{Consensus: Clique, CacheDir: t.TempDir(), GoTool: "/nonexistent/go"}.withDefaults())
		if !errors.Is(err, ErrGethBuild) {
			t.Errorf("err = %v, want ErrGethBuild", err)
		}
	})
	t.Run("wrong version built", func(t *testing.T) {
		_, err := ensureGeth(ctx, Config{Consensus: Clique, CacheDir: t.TempDir(), GoTool: fakeGo(t, Clique, "1.17.10", false)}.withDefaults())
		if !errors.Is(err, ErrBadGeth) {
			t.Errorf("err = %v, want ErrBadGeth", err)
		}
	})
	t.Run("BFT refuses geth 1.13", func(t *testing.T) {
		_, err := ensureGeth(ctx, Config{Consensus: BFT, CacheDir: t.TempDir(), GoTool: fakeGo(t, BFT, "1.13.15", false)}.withDefaults())
		if !errors.Is(err, ErrBadGeth) || !strings.Contains(err.Error(), "bft needs v1.17.10") {
			t.Errorf("err = %v, want ErrBadGeth saying bft needs v1.17.10", err)
		}
	})
	for name, script := range map[string]string{
		"not a program": "",
		"exits 1":       "#!/bin/sh\nexit 1\n",
		"geth 1.17":     "#!/bin/sh\necho Version: 1.17.10-stable\n",
		"no version":    "#!/bin/sh\necho hello\n",
	} {
		t.Run("--geth "+name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "geth")
			if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := ensureGeth(ctx, Config{Consensus: Clique, Geth: p}.withDefaults())
			if !errors.Is(err, ErrBadGeth) || strings.Contains(err.Error(), "\n") {
				t.Errorf("err = %v, want ErrBadGeth on one line", err)
			}
		})
	}
}

// Every message the CLI may print must be one line saying what to do.
func TestErrorMessages(t *testing.T) {
	for _, err := range []error{ErrBadNodes, ErrUnknownMember, ErrNoSigner, ErrOneValidator, ErrNoPublic, ErrDirMismatch,
		ErrNotConsortium, ErrLocked, ErrPortTaken, ErrBadBasePort, ErrBadConsensus, ErrGethBuild, ErrBadGeth, ErrNodeStart,
		ErrNotRunning, ErrMemberExists, ErrJoinTimeout, ErrFollowTimeout} {
		if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, ": ") {
			t.Errorf("%q: want one line, \"problem: what to do\"", msg)
		}
	}
}
