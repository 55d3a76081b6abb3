//go:build !linux

package httpapi

import (
	"net"
	"time"
)

// deferAccept is Linux's TCP_DEFER_ACCEPT; elsewhere silent connections are
// left to the header timeout.
func deferAccept(ln net.Listener, d time.Duration) {}
