//go:build !race

package agent_test

// raceEnabled: the race detector slows every call several times, so a few
// timing bounds are widened under it (each says where).
const raceEnabled = false
