package load

import (
	"bufio"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// RunConcurrent calls fn(i) for i in [0, n) from `workers` goroutines and
// returns each call's latency (indexed by i) and the wall time of the run.
// It stops handing out work at the first error, and returns that error.
func RunConcurrent(workers, n int, fn func(i int) error) ([]time.Duration, time.Duration, error) {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var failed atomic.Bool
	var errOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				if err := fn(i); err != nil {
					errOnce.Do(func() { firstErr = err })
					failed.Store(true)
					return
				}
				lat[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	return lat, time.Since(start), firstErr
}

// Pct returns the p-th percentile (nearest rank) of ds; it sorts ds.
func Pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	k := int(float64(len(ds))*p/100+0.999999) - 1
	return ds[max(0, min(k, len(ds)-1))]
}

// ProcMem reads VmRSS and VmHWM of pid from /proc/PID/status, in MB (10^6
// bytes); -1, -1 when pid is not there.
func ProcMem(pid int) (rss, hwm float64) {
	fh, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1, -1
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) < 1 {
			continue
		}
		kb, _ := strconv.ParseFloat(fs[0], 64)
		if k == "VmRSS" {
			rss = kb * 1024 / 1e6
		} else {
			hwm = kb * 1024 / 1e6
		}
	}
	return rss, hwm
}
