package hatest

import (
	"os"
	"testing"

	"github.com/consortium/consortium/internal/proctest"
)

// replicaMemLimit is the GOMEMLIMIT the suite gives its processes, as
// docs/ha.md advises for replicas (the built-in 56 MiB made the collector run
// without pause with ~700 watchers on one replica: answers 2 s late).
const replicaMemLimit = "256MiB"

// newProcs starts the suite's processes (proctest: own process groups,
// killed in t.Cleanup, logs shown on failure).
func newProcs(t testing.TB) *proctest.Procs {
	ps := proctest.New(t)
	if os.Getenv("GOMEMLIMIT") == "" {
		// A replica that holds hundreds of blocking queries needs more
		// than the registrar's built-in soft limit (docs/ha.md says so).
		ps.Env = append(ps.Env, "GOMEMLIMIT="+replicaMemLimit)
	}
	return ps
}

var freePorts = proctest.FreePorts
