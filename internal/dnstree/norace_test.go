//go:build !race

package dnstree

const raceEnabled = false
