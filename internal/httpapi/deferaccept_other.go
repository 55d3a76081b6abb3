//go:build !linux

package httpapi

import (
	"net"
	"time"
)

// deferAccept is Linux's TCP_DEFER_ACCEPT; elsewhere silent connections are
// left to the header timeout.
func deferAccept(ln net.Listener, d time.Duration) {}

// unread is known on Linux only: elsewhere every connection counts as
// having nothing unread, and the oldest idle one is closed to make room.
func unread(c net.Conn) bool { return false }

// acceptQueue is known on Linux only: elsewhere the accept queue is never
// drained by closing connections.
func acceptQueue(ln net.Listener) (int, bool) { return 0, false }
