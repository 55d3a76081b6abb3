package httpapi

import (
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// deferAccept asks Linux to hand a connection to accept only once the
// client has sent data (TCP_DEFER_ACCEPT), or after d: a connection that
// says nothing then costs the registrar no descriptor, no goroutine, and no
// place under the connection cap while it is silent.
func deferAccept(ln net.Listener, d time.Duration) {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		return
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, max(1, int(d/time.Second)))
	})
}

// unread reports whether c has received bytes the server has not read yet
// (FIONREAD): a request on its way in.
func unread(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	rc.Control(func(fd uintptr) {
		n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ)
	})
	return n > 0
}

// acceptQueue is the number of connections waiting in ln's accept queue:
// for a listening socket, TCP_INFO's tcpi_unacked is that count.
func acceptQueue(ln net.Listener) (n int, ok bool) {
	tl, isTCP := ln.(*net.TCPListener)
	if !isTCP {
		return 0, false
	}
	rc, err := tl.SyscallConn()
	if err != nil {
		return 0, false
	}
	rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		if err == nil {
			n, ok = int(info.Unacked), true
		}
	})
	return n, ok
}
