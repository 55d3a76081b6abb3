package hatest

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is one run of the consortium binary, in its own process group so
// that a kill reaches everything it started. Its output goes to a file in the
// test's log directory, shown (the end of it) when the test fails.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and been waited for
}

// procs starts a test's processes. Each is SIGKILLed in t.Cleanup, failed
// test or not, in the reverse order of their starts (registrars before the
// etcd members they use); the kernel kills them too (Pdeathsig) should the
// test binary die first. When the test fails, the end of every log is shown.
type procs struct {
	t      testing.TB
	logDir string

	mu   sync.Mutex
	logs map[string]string // name -> log file
}

// replicaMemLimit is the GOMEMLIMIT the suite gives its processes, as
// docs/ha.md advises for replicas (the built-in 56 MiB made the collector run
// without pause with ~700 watchers on one replica: answers 2 s late).
const replicaMemLimit = "256MiB"

func newProcs(t testing.TB) *procs {
	ps := &procs{t: t, logDir: t.TempDir(), logs: map[string]string{}}
	t.Cleanup(func() {
		if t.Failed() {
			ps.dumpLogs()
		}
	})
	return ps
}

// start runs `consortium args...` as name. A name used again (a restart)
// appends to the same log file.
func (ps *procs) start(name string, args ...string) *proc {
	ps.t.Helper()
	path := filepath.Join(ps.logDir, name+".log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		ps.t.Fatal(err)
	}
	fmt.Fprintf(f, "=== %s start: consortium %q\n", time.Now().Format("15:04:05.000"), args)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "GOTRACEBACK=all")
	if os.Getenv("GOMEMLIMIT") == "" {
		// A replica that holds hundreds of blocking queries needs more
		// than the registrar's built-in soft limit (docs/ha.md says so).
		cmd.Env = append(cmd.Env, "GOMEMLIMIT="+replicaMemLimit)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		ps.t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		cmd.Wait()
		f.Close()
		close(p.done)
	}()
	ps.t.Cleanup(p.kill)
	ps.mu.Lock()
	ps.logs[name] = path
	ps.mu.Unlock()
	return p
}

// kill sends SIGKILL to the process group and waits for the process. A
// process that has already been waited for is left alone: its PID may be
// another process's by now.
func (p *proc) kill() {
	if !p.exited() {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

// exited reports whether the process has ended (by itself or killed).
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// dumpLogs shows the end of every process's log.
func (ps *procs) dumpLogs() {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	for name, path := range ps.logs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		ps.t.Logf("--- last lines of %s (%s):\n%s", name, path, tail(b, 40))
	}
}

// tail is the last n lines of b.
func tail(b []byte, n int) []byte {
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

// freePorts picks n distinct free loopback ports, holding each open until
// all are picked. A process binds it a moment later: another process could
// take it in between, which is rare enough on a test machine.
func freePorts(t testing.TB, n int) []int {
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
