//go:build !race

package hatest

const raceEnabled = false
