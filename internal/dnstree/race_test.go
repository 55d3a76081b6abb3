//go:build race

package dnstree

// raceEnabled: the race detector slows every goroutine several times over,
// so latency figures measured under it say nothing about the code.
const raceEnabled = true
