package hatest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/registry"
)

// Diagnostics for failure messages and logs: where the CPU went, and which
// leases ran out on which replica.

// cpuSeconds is the CPU time (user + system) a process has used.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 > len(s) {
		return 0
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ
}

// cpuMeter measures the CPU each process uses over a window.
type cpuMeter struct {
	start  time.Time
	names  []string
	pids   []int
	before []float64
}

func startCPU(rs []*replica, ec *etcdCluster) *cpuMeter {
	m := &cpuMeter{start: time.Now(), names: []string{"test binary"}, pids: []int{os.Getpid()}}
	for _, r := range rs {
		if !r.p.Exited() {
			m.names, m.pids = append(m.names, r.name), append(m.pids, r.p.Pid())
		}
	}
	for _, e := range ec.members {
		if !e.p.Exited() {
			m.names, m.pids = append(m.names, e.name), append(m.pids, e.p.Pid())
		}
	}
	for _, pid := range m.pids {
		m.before = append(m.before, cpuSeconds(pid))
	}
	return m
}

func (m *cpuMeter) String() string {
	el := time.Since(m.start)
	parts := []string{fmt.Sprintf("over %s (load average %s):", el.Round(10*time.Millisecond), loadavg())}
	for i, pid := range m.pids {
		parts = append(parts, fmt.Sprintf("%s %.2fs", m.names[i], cpuSeconds(pid)-m.before[i]))
	}
	return strings.Join(parts, " ")
}

// expiries counts, per replica, the "expired" events (a lease that ran
// out there) since seq 0, and names the first few nodes.
func expiries(rs []*replica, admin string) string {
	var out []string
	for _, r := range rs {
		if r.p.Exited() {
			continue
		}
		code, b, err := get(r.url()+"/v1/events", admin)
		if err != nil || code != http.StatusOK {
			out = append(out, fmt.Sprintf("%s: %d %v", r.name, code, err))
			continue
		}
		var ev struct {
			Events []registry.Event `json:"events"`
		}
		if json.Unmarshal(b, &ev) != nil {
			continue
		}
		byKind := map[string]int{}
		for _, e := range ev.Events {
			byKind[string(e.Kind)]++
		}
		var kinds []string
		for k, n := range byKind {
			kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
		}
		sort.Strings(kinds)
		out = append(out, fmt.Sprintf("%s: %s", r.name, strings.Join(kinds, ", ")))
	}
	return strings.Join(out, "; ")
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Fields(string(b))[0]
}

// memStats reads a replica's Go memory and GC count from /metrics: heap
// and stacks in use, all memory from the OS, GCs so far, and its watchers.
func memStats(r *replica) string {
	code, b, err := get(r.url()+"/metrics", "")
	if err != nil || code != http.StatusOK {
		return fmt.Sprintf("%s: metrics %d %v", r.name, code, err)
	}
	v := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		f, err := strconv.ParseFloat(val, 64)
		if err == nil {
			v[name] = f
		}
	}
	mb := func(k string) float64 { return v[k] / 1e6 }
	return fmt.Sprintf("%s: %d watchers; heap in use %.0f MB, stacks %.0f MB, from the OS %.0f MB; %d GCs so far",
		r.name, int(v["consortium_registrar_watchers"]), mb("go_memstats_heap_inuse_bytes"), mb("go_memstats_stack_inuse_bytes"),
		mb("go_memstats_sys_bytes"), int(v["go_gc_duration_seconds_count"]))
}

// parked sums the replicas' consortium_registrar_watchers gauges: the
// blocking queries waiting there now.
func parked(rs []*replica) int {
	n := 0
	for _, r := range rs {
		code, b, err := get(r.url()+"/metrics", "")
		if err != nil || code != http.StatusOK {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "consortium_registrar_watchers "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				n += int(f)
			}
		}
	}
	return n
}
