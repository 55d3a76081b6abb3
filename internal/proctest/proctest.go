// Package proctest runs real processes for tests: the consortium binary
// (built once per test binary) or any other program, each in its own process
// group, its output in a log file, SIGKILLed in t.Cleanup whether the test
// passed or not, and killed by the kernel (Pdeathsig) should the test binary
// die first. When a test fails, the end of every log is shown.
//
// The suites that need real processes (internal/hatest, internal/bfttest)
// share it, so a process started in a test is stopped by its own process
// group in one place.
package proctest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles ./cmd/consortium (without -race: only the test binary
// carries the race detector) from the module root into dir and returns the
// binary's path.
func Build(dir string) (string, error) {
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

// Proc is one run of a program.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been waited for
}

// Procs starts one test's processes.
type Procs struct {
	t      testing.TB
	LogDir string
	// Env is added to every process's environment.
	Env []string

	mu   sync.Mutex
	logs map[string]string // name -> log file
}

// New returns a Procs for t; on failure, t's cleanup prints every log's end.
func New(t testing.TB) *Procs {
	ps := &Procs{t: t, LogDir: t.TempDir(), logs: map[string]string{}}
	t.Cleanup(func() {
		if t.Failed() {
			ps.DumpLogs()
		}
	})
	return ps
}

// Start runs bin with args as name. A name used again (a restart) appends
// to the same log file. Processes are SIGKILLed in t.Cleanup in the reverse
// order of their starts.
func (ps *Procs) Start(name, bin string, args ...string) *Proc {
	ps.t.Helper()
	path := ps.LogPath(name)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		ps.t.Fatal(err)
	}
	fmt.Fprintf(f, "=== %s start: %s %q\n", time.Now().Format("15:04:05.000"), filepath.Base(bin), args)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(append(os.Environ(), "GOTRACEBACK=all"), ps.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		ps.t.Fatalf("starting %s: %v", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	ps.t.Cleanup(p.Kill)
	ps.mu.Lock()
	ps.logs[name] = path
	ps.mu.Unlock()
	return p
}

// LogPath is where the output of the process called name goes.
func (ps *Procs) LogPath(name string) string { return filepath.Join(ps.LogDir, name+".log") }

// Pid is the process's ID (and its group's).
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL to the process group and waits for the process. A
// process that has already been waited for is left alone: its PID may be
// another process's by now.
func (p *Proc) Kill() { p.Signal(syscall.SIGKILL) }

// Signal sends sig to the process group, then waits for the process to
// exit: SIGKILL after 10 s if sig did not end it.
func (p *Proc) Signal(sig syscall.Signal) {
	if p.Exited() {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// ExitCode is the exit code of a process that has exited (-1 when a signal
// ended it or it still runs).
func (p *Proc) ExitCode() int {
	if !p.Exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has ended (by itself or killed).
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// DumpLogs shows the end of every process's log.
func (ps *Procs) DumpLogs() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for name, path := range ps.logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		ps.t.Logf("--- last lines of %s (%s):\n%s", name, path, Tail(b, 40))
	}
}

// Tail is the last n lines of b.
func Tail(b []byte, n int) []byte {
	b = bytes.TrimRight(b, "\n")
	i := len(b)
	for k := 0; k < n && i > 0; k++ {
		i = bytes.LastIndexByte(b[:i], '\n')
		if i < 0 {
			return b
		}
	}
	return b[i+1:]
}

// FreePorts picks n distinct free loopback ports, holding each open until
// all are picked. A process binds it a moment later: another process could
// take it in between, which is rare enough on a test machine.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
