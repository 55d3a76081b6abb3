//go:build race

package hatest

// raceEnabled tells the benchmark that its load generator runs under the
// race detector.
const raceEnabled = true
