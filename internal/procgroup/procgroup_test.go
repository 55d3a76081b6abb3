package procgroup

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// start runs a shell that ignores sigs and leads its own group, with a child
// in the same group.
func start(t *testing.T, script string) (*exec.Cmd, chan struct{}) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); <-done })
	return cmd, done
}

func TestStopWithSignal(t *testing.T) {
	cmd, done := start(t, "sleep 60 & wait")
	pid := cmd.Process.Pid
	t0 := time.Now()
	Stop(pid, done, syscall.SIGTERM, 10*time.Second)
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("SIGTERM took %v", d)
	}
	// The child (sleep) was in the group: nothing of the group is left.
	time.Sleep(100 * time.Millisecond)
	if err := syscall.Kill(-pid, 0); err == nil {
		t.Fatalf("process group %d still has members", pid)
	}
}

func TestStopEscalatesToKill(t *testing.T) {
	cmd, done := start(t, "trap '' TERM; sleep 60 & wait; sleep 60")
	time.Sleep(200 * time.Millisecond) // let the shell set its trap
	t0 := time.Now()
	Stop(cmd.Process.Pid, done, syscall.SIGTERM, 300*time.Millisecond)
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Fatalf("returned after %v, before the grace", d)
	}
	select {
	case <-done:
	default:
		t.Fatal("Stop returned before the process was reaped")
	}
}

func TestStopAfterExitSendsNothing(t *testing.T) {
	cmd, done := start(t, "exit 0")
	<-done
	Stop(cmd.Process.Pid, done, syscall.SIGKILL, time.Second) // must not block or signal
}
