package devnet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// gethModule is what `go install` builds for c.
func gethModule(c Consensus) string {
	return "github.com/ethereum/go-ethereum/cmd/geth@" + GethVersion(c)
}

// progressEvery is how often a running build says it is still running.
var progressEvery = 20 * time.Second

// GethPath is where the build of GethVersion(c) is cached under cacheDir,
// the same place scripts/build-geth.sh uses.
func GethPath(cacheDir string, c Consensus) string {
	return filepath.Join(cacheDir, "geth-"+GethVersion(c), "geth")
}

// ensureGeth returns the geth binary c.Consensus runs: c.Geth when given,
// else the cached build, which it builds first when it is missing.
func ensureGeth(ctx context.Context, c Config) (string, error) {
	if c.Geth != "" {
		if err := checkGeth(ctx, c.Geth, c.Consensus); err != nil {
			return "", err
		}
		return c.Geth, nil
	}
	bin := GethPath(c.CacheDir, c.Consensus)
	if _, err := os.Stat(bin); err == nil {
		if err := checkGeth(ctx, bin, c.Consensus); err == nil {
			return bin, nil
		}
		// A broken cached binary (a build interrupted before this code
		// renamed atomically, a disk error) is rebuilt, not trusted.
	}
	return buildGeth(ctx, c, bin)
}

// checkGeth runs `geth version` and wants a release of the line mode runs
// (1.17 for BFT, 1.13 for Clique).
func checkGeth(ctx context.Context, bin string, mode Consensus) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w (%s version: %v)", ErrBadGeth, bin, firstLine(err.Error()))
	}
	for line := range strings.SplitSeq(string(out), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "Version:"); ok {
			v = strings.TrimSpace(v)
			if strings.HasPrefix(v, gethLine(mode)) {
				return nil
			}
			return fmt.Errorf("%w (%s is geth %s; %s needs %s)", ErrBadGeth, bin, v, mode, GethVersion(mode))
		}
	}
	return fmt.Errorf("%w (%s version printed no version)", ErrBadGeth, bin)
}

// buildGeth builds GethVersion(c.Consensus) into bin with `go install`, saying so while it
// runs. It builds in a temporary directory beside bin and renames the result
// into place, so a half-written binary is never found; a lock file keeps two
// builds of the same version (two devnets, scripts/build-geth.sh) apart.
func buildGeth(ctx context.Context, c Config, bin string) (string, error) {
	goTool, err := exec.LookPath(c.GoTool)
	if err != nil {
		return "", fmt.Errorf("%w (%s is not built and %q is not on PATH)", ErrGethBuild, bin, c.GoTool)
	}
	dir := filepath.Dir(bin)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("%w (%v)", ErrGethBuild, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", fmt.Errorf("%w (%v)", ErrGethBuild, err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("%w (locking %s: %v)", ErrGethBuild, lock.Name(), err)
	}
	if checkGeth(ctx, bin, c.Consensus) == nil {
		return bin, nil // built by whoever held the lock
	}
	tmp, err := os.MkdirTemp(dir, ".build.")
	if err != nil {
		return "", fmt.Errorf("%w (%v)", ErrGethBuild, err)
	}
	defer os.RemoveAll(tmp)

	version, module := GethVersion(c.Consensus), gethModule(c.Consensus)
	fmt.Fprintf(c.Out, "building geth %s into %s (first run only; takes a few minutes)\n", version, dir)
	args := []string{"install", module}
	if c.Consensus == Clique {
		// -checklinkname=0: geth < 1.14 links an old dependency through
		// a go:linkname that Go >= 1.23 refuses.
		args = []string{"install", "-ldflags=-checklinkname=0", module}
	}
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = tmp // outside any module, so no go.mod around us interferes
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=")
	var log tailBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	cmd.SysProcAttr = childAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("%w (%v)", ErrGethBuild, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for waiting := true; waiting; {
		select {
		case <-tick.C:
			fmt.Fprintf(c.Out, "  still building geth (%s)\n", time.Since(start).Round(time.Second))
		case err = <-done:
			waiting = false
		}
	}
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if err != nil {
		return "", fmt.Errorf("%w (go install %s: %v: %s)", ErrGethBuild, module, err, log.last())
	}
	if err := os.Rename(filepath.Join(tmp, "geth"), bin); err != nil {
		return "", fmt.Errorf("%w (%v)", ErrGethBuild, err)
	}
	if err := checkGeth(ctx, bin, c.Consensus); err != nil {
		return "", err
	}
	fmt.Fprintf(c.Out, "built geth %s in %s\n", version, time.Since(start).Round(time.Second))
	return bin, nil
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 4096 {
		t.b = t.b[len(t.b)-4096:]
	}
	return len(p), nil
}

// last is the last non-empty line, the one that usually names the failure.
func (t *tailBuffer) last() string {
	lines := bytes.Split(bytes.TrimSpace(t.b), []byte("\n"))
	return strings.TrimSpace(string(lines[len(lines)-1]))
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// childAttr puts a child in a process group of its own, so a stop reaches
// everything it spawns and the terminal's Ctrl-C does not reach it before
// we stop it in order; and makes it die with this process (SIGKILL when
// our thread goes), so a devnet killed with -9 leaves nothing behind.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
