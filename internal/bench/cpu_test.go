package bench

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The machine may be shared: a figure taken while other processes hold the
// CPU is not the registrar's alone. cpuMeter tells, for one measured phase,
// how much of the machine's CPU this test process, the registrar process
// (when it runs apart) and all other processes used.
type cpuMeter struct {
	start       time.Time
	self, child time.Duration
	others      time.Duration
	pid         int
}

func startCPU(pid int) cpuMeter {
	return cpuMeter{start: time.Now(), self: selfCPU(), child: pidCPU(pid, false), others: othersCPU(pid), pid: pid}
}

// String reports the phase's CPU use in % of all cores.
func (m cpuMeter) String() string {
	wall := time.Since(m.start)
	ncpu := float64(runtime.NumCPU())
	pctOf := func(d time.Duration) float64 { return max(0, 100*float64(d)/float64(wall)/ncpu) }
	self := pctOf(selfCPU() - m.self)
	others := pctOf(othersCPU(m.pid) - m.others)
	if m.pid > 0 {
		return fmt.Sprintf("registrar %.0f%%, load generator %.0f%%, other processes %.0f%%", pctOf(pidCPU(m.pid, false)-m.child), self, others)
	}
	return fmt.Sprintf("registrar + load generator (one process) %.0f%%, other processes %.0f%%", self, others)
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// pidCPU is utime+stime of pid from /proc/PID/stat (clock ticks of 1/100 s),
// plus its reaped children's when withChildren.
func pidCPU(pid int, withChildren bool) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s) // f[0] is field 3 (state); utime, stime, cutime, cstime are fields 14-17
	if len(f) < 15 {
		return 0
	}
	n := 2
	if withChildren {
		n = 4
	}
	var ticks int64
	for _, v := range f[11 : 11+n] {
		t, _ := strconv.ParseInt(v, 10, 64)
		ticks += t
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// othersCPU sums the CPU time of every process but this one and pid
// (reaped children included, so short-lived compilers and tests count).
func othersCPU(pid int) time.Duration {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	var sum time.Duration
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil || p == self || p == pid {
			continue
		}
		sum += pidCPU(p, true)
	}
	return sum
}

// waitQuiet gives a measured phase its best chance on a shared machine: it
// waits, at most max, until other processes use under 15% of the cores over
// half a second. The phase's cpuMeter still reports what really happened.
func waitQuiet(max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) {
		m := startCPU(0)
		time.Sleep(500 * time.Millisecond)
		if 100*float64(othersCPU(0)-m.others)/float64(time.Since(m.start))/float64(runtime.NumCPU()) < 15 {
			return
		}
	}
}
