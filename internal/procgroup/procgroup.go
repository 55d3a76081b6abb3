// Package procgroup stops a process started as the leader of its own
// process group (SysProcAttr.Setpgid) together with everything it started.
package procgroup

import (
	"syscall"
	"time"
)

// Stop sends sig to the group led by pid, waits up to grace for done (closed
// once the leader has exited and been waited for), then SIGKILLs the group
// and waits for done. The group is signalled only while its leader is
// unreaped, so its ID cannot belong to an unrelated process yet: if done is
// closed already, nothing is sent.
func Stop(pid int, done <-chan struct{}, sig syscall.Signal, grace time.Duration) {
	select {
	case <-done:
		return
	default:
	}
	_ = syscall.Kill(-pid, sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-done
	}
}
