package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The load of the flood test and benchmark (flood_test.go): the good
// member's renewals, measured, and the anonymous connections, in this
// process or in child processes of this test binary.

// renewalRun is what measureRenewals saw.
type renewalRun struct {
	kept, fresh []time.Duration // latencies on kept-alive and on new connections
	errors      []string
	load        string // /proc/loadavg half-way through
}

// measureRenewals renews every node of ids every 200 ms for d: half on a
// kept-alive connection (an agent between renewals), half on a new
// connection each time (an agent that just started).
func measureRenewals(ctx context.Context, base, cred string, ids []string, d time.Duration) renewalRun {
	var mu sync.Mutex
	var out renewalRun
	mctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	for i, id := range ids {
		fresh := i%2 == 1
		c := floodClient("127.3.0.1", !fresh, 2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !fresh {
				// The agent's connection exists before it is measured
				// (a first request on a new one is the other half's).
				call(c, "POST", base+"/v1/nodes/"+id+"/renew", cred, nil)
			}
			t := time.NewTicker(200 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-mctx.Done():
					return
				case <-t.C:
				}
				start := time.Now()
				st, b, _, err := call(c, "POST", base+"/v1/nodes/"+id+"/renew", cred, nil)
				took := time.Since(start)
				mu.Lock()
				switch {
				case err != nil || st != 200:
					out.errors = append(out.errors, fmt.Sprintf("%s connection: %d %s %v", map[bool]string{true: "new", false: "kept-alive"}[fresh], st, bytes.TrimSpace(b), err))
				case fresh:
					out.fresh = append(out.fresh, took)
				default:
					out.kept = append(out.kept, took)
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(d / 2)
	out.load = readFile("/proc/loadavg")
	wg.Wait()
	return out
}

// anonFlood holds idle anonymous connections first..first+n-1 to addr
// until ctx ends, up to 500 per source address: half send nothing, half
// one request for a route that does not exist, and then hold the
// connection; each is opened again redial after the registrar closes it.
// open counts those connected.
func anonFlood(ctx context.Context, addr string, first, n int, redial time.Duration, open *atomic.Int64) {
	var wg sync.WaitGroup
	for i := first; i < first+n; i++ {
		src := fmt.Sprintf("127.1.%d.%d", i/500/250, 1+i/500%250)
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err == nil {
					open.Add(1)
					if i%2 == 1 {
						fmt.Fprintf(c, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
					}
					stop := context.AfterFunc(ctx, func() { c.Close() })
					io.Copy(io.Discard, c) // until the registrar closes it
					stop()
					c.Close()
					open.Add(-1)
				}
				select {
				case <-ctx.Done():
				case <-time.After(redial):
				}
			}
		}()
	}
	wg.Wait()
}

// floodChild runs anonFlood in a child process (this test binary, in
// TestFloodChild) and adds the open connections it reports to open.
func floodChild(ctx context.Context, tb testing.TB, addr string, first, n int, redial time.Duration, open *atomic.Int64) {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFloodChild$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), fmt.Sprintf("CONSORTIUM_FLOOD_CHILD=%s,%d,%d,%s", addr, first, n, redial))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Error(err)
		return
	}
	if err := cmd.Start(); err != nil {
		tb.Error(err)
		return
	}
	var last int64
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		var v int64
		if _, err := fmt.Sscanf(sc.Text(), "open %d", &v); err == nil {
			open.Add(v - last)
			last = v
		}
	}
	open.Add(-last)
	cmd.Wait()
}

// TestFloodChild is a flood child process's body (see floodChild); it does
// nothing in a normal run.
func TestFloodChild(t *testing.T) {
	spec := os.Getenv("CONSORTIUM_FLOOD_CHILD")
	if spec == "" {
		t.Skip("run by the flood benchmark only")
	}
	var addr string
	var first, n int
	parts := strings.Split(spec, ",")
	addr = parts[0]
	fmt.Sscan(parts[1], &first)
	fmt.Sscan(parts[2], &n)
	redial, err := time.ParseDuration(parts[3])
	if err != nil {
		t.Fatal(err)
	}
	raiseNofile(t, uint64(n+1024))
	var open atomic.Int64
	go func() {
		for {
			time.Sleep(500 * time.Millisecond)
			fmt.Printf("open %d\n", open.Load())
		}
	}()
	anonFlood(context.Background(), addr, first, n, redial, &open)
}

// renewals measures the good member's renewals (measureRenewals) in this
// process or, when the load runs niced (CONSORTIUM_FLOOD_NICE), in a child
// process at the default priority, as the member's agents would run on
// their own hosts: a starved load generator must not slow the measurement.
func renewals(ctx context.Context, tb testing.TB, base, cred string, ids []string, d time.Duration) renewalRun {
	n := os.Getenv("CONSORTIUM_FLOOD_NICE")
	if n == "" {
		return measureRenewals(ctx, base, cred, ids, d)
	}
	cmd := exec.CommandContext(ctx, "nice", "-n", "-"+n, os.Args[0], "-test.run=^TestFloodRenewChild$", "-test.timeout=0")
	cmd.Env = append(os.Environ(), "CONSORTIUM_FLOOD_RENEW="+strings.Join(append([]string{base, cred, d.String()}, ids...), ","))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.Output()
	var wire struct {
		Kept, Fresh []time.Duration
		Errors      []string
		Load        string
	}
	i := bytes.Index(out, []byte("RESULT "))
	if err != nil || i < 0 {
		tb.Fatalf("renewal child: %v\n%s", err, out)
	}
	line, _, _ := bytes.Cut(out[i+len("RESULT "):], []byte("\n"))
	if err := json.Unmarshal(line, &wire); err != nil {
		tb.Fatalf("renewal child: %v", err)
	}
	return renewalRun{kept: wire.Kept, fresh: wire.Fresh, errors: wire.Errors, load: wire.Load}
}

// TestFloodRenewChild is the renewal child's body (see renewals); it does
// nothing in a normal run.
func TestFloodRenewChild(t *testing.T) {
	spec := os.Getenv("CONSORTIUM_FLOOD_RENEW")
	if spec == "" {
		t.Skip("run by the flood benchmark only")
	}
	parts := strings.Split(spec, ",")
	d, err := time.ParseDuration(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	m := measureRenewals(context.Background(), parts[0], parts[1], parts[3:], d)
	b, _ := json.Marshal(map[string]any{"Kept": m.kept, "Fresh": m.fresh, "Errors": m.errors, "Load": m.load})
	fmt.Printf("RESULT %s\n", b)
}
