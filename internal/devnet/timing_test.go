//go:build linux

package devnet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/gethtest"
)

// TestDevnetTiming measures what docs/benchmarks-devnet.md reports: from
// Start (geth already built, a new directory) to every geth running, to the
// full mesh, and to the first block sealed by each member; and the resident
// memory once the chain runs. It is a measurement, not a check, so it runs
// only when asked:
//
//	CONSORTIUM_DEVNET_TIMING=1 CONSORTIUM_DEVNET_TIMING_MEMBERS=3,10 \
//	  go test -run TestDevnetTiming -v -timeout 30m ./internal/devnet/
//
// It measures the Clique devnet (geth v1.13.15) unless
// CONSORTIUM_DEVNET_TIMING_CONSENSUS=bft asks for the BFT one (geth
// v1.17.10 and a consensus node beside each, in the devnet process).
func TestDevnetTiming(t *testing.T) {
	if os.Getenv("CONSORTIUM_DEVNET_TIMING") == "" {
		t.Skip("a measurement: set CONSORTIUM_DEVNET_TIMING=1 (and CONSORTIUM_DEVNET_TIMING_MEMBERS=3,10) to run it")
	}
	mode, version := Clique, gethtest.V113
	if os.Getenv("CONSORTIUM_DEVNET_TIMING_CONSENSUS") == string(BFT) {
		mode, version = BFT, gethtest.V117
	}
	geth := gethtest.Binary(t, version)
	sizes := []int{3}
	if v := os.Getenv("CONSORTIUM_DEVNET_TIMING_MEMBERS"); v != "" {
		sizes = nil
		for f := range strings.SplitSeq(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 26 {
				t.Fatalf("CONSORTIUM_DEVNET_TIMING_MEMBERS: %q", v)
			}
			sizes = append(sizes, n)
		}
	}
	runs := 1
	if v, err := strconv.Atoi(os.Getenv("CONSORTIUM_DEVNET_TIMING_RUNS")); err == nil && v > 0 {
		runs = v
	}
	for _, size := range sizes {
		for run := 1; run <= runs; run++ {
			t.Run(fmt.Sprintf("%s %d members run %d", mode, size, run), func(t *testing.T) { timeDevnet(t, mode, geth, size) })
		}
	}
}

func timeDevnet(t *testing.T, mode Consensus, geth string, size int) {
	var members []string
	for i := range size {
		members = append(members, string(rune('a'+i)))
	}
	var out syncBuffer
	start := time.Now()
	d, err := Start(context.Background(), Config{
		Dir: filepath.Join(t.TempDir(), "devnet"), Consensus: mode, Members: members, Geth: geth,
		RegistrarListen: "127.0.0.1:0", BasePort: 21000, Out: &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	started := time.Since(start)
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		st := d.Stats()
		if !st.Mesh.IsZero() && len(st.FirstBlock) == size {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := d.Stats()
	if st.Mesh.IsZero() || len(st.FirstBlock) != size {
		t.Fatalf("after 5 min: mesh %v, first blocks from %d of %d members\n%s", !st.Mesh.IsZero(), len(st.FirstBlock), size, out.String())
	}
	var firsts []time.Duration
	for _, at := range st.FirstBlock {
		firsts = append(firsts, at.Sub(st.Started))
	}
	slices.Sort(firsts)

	// Steady state: a few periods after the last member's first block.
	time.Sleep(10 * time.Second)
	var geths, rss int
	for _, n := range d.Nodes() {
		if n.PID != 0 {
			geths++
			rss += rssKiB(n.PID)
		}
	}
	self := rssKiB(os.Getpid())
	t.Logf("%d members, %d geth: all geth running %.1fs, full mesh %.1fs (%d links), first block of the first member %.1fs, of every member %.1fs (median %.1fs); RSS geth %d MiB (%.0f MiB each), devnet process %d MiB",
		size, geths, started.Seconds(), st.Mesh.Sub(st.Started).Seconds(), st.Expected,
		firsts[0].Seconds(), firsts[len(firsts)-1].Seconds(), firsts[len(firsts)/2].Seconds(),
		rss/1024, float64(rss)/1024/float64(geths), self/1024)
}
