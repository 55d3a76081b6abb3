package hatest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/bench/load"
)

// TestHABenchmark repeats the registrar benchmark of internal/bench (same
// population, same loads, see docs/benchmarks.md) against real registrar
// processes: SQLite with one replica, then etcd (three `consortium etcd`
// processes) with three replicas, the load spread evenly over the replicas.
// It prints one Markdown table with both side by side. It runs only with
// HA_BENCH=1, and should be run without -race:
//
//	HA_BENCH=1 go test -run TestHABenchmark -count=1 -v -timeout 30m ./internal/hatest/
//
// The population and the load generator are internal/bench/load's, as for
// internal/bench: requests built by hand, every body read to the end
// without decoding it. Unlike internal/bench, the registrars are real
// processes: they run with the GOMEMLIMIT docs/ha.md advises for replicas
// (replicaMemLimit), or the one in the environment (the table says which).
func TestHABenchmark(t *testing.T) {
	if os.Getenv("HA_BENCH") != "1" {
		t.Skip("set HA_BENCH=1 to run the HA benchmark")
	}
	if raceEnabled {
		t.Log("WARNING: the load generator is built with -race; its figures are not comparable to docs/benchmarks.md")
	}
	pop, err := load.Generate()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("population: %d nodes + %d new, generated in %s", len(pop.Nodes), len(pop.Fresh), pop.GenTime.Round(time.Millisecond))
	var cols []benchResult
	for _, kind := range []string{"sqlite", "etcd"} {
		var res benchResult
		t.Run(kind, func(t *testing.T) { res = runBench(t, kind, pop) })
		cols = append(cols, res)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\n| benchmark | metric | %s | %s |\n|---|---|---|---|\n", cols[0].name, cols[1].name)
	for i, row := range cols[0].rows {
		other := "(not run)"
		if i < len(cols[1].rows) {
			other = cols[1].rows[i].value
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", row.bench, row.metric, row.value, other)
	}
	t.Log(b.String())
	fmt.Println(b.String())
}

const (
	benchRounds  = 2 // watcher rounds
	benchWorkers = 64
)

type benchRow struct{ bench, metric, value string }

type benchResult struct {
	name string
	rows []benchRow
}

func (r *benchResult) add(bench, metric, format string, a ...any) {
	r.rows = append(r.rows, benchRow{bench, metric, fmt.Sprintf(format, a...)})
}
