//go:build !linux

package main

// releaseBinaryPages does nothing off Linux (see release_linux.go).
func releaseBinaryPages() (int64, error) { return 0, nil }
