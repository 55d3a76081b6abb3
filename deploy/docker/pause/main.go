// Command pause holds a network namespace in the compose consortium: geth
// and its agent (the node's consensus process on a BFT chain) both join the
// namespace of a pause container (network_mode: service:...), as the
// containers of a Kubernetes pod join the pod's. They must share one: the
// node's signed record names a single IP for both its devp2p and CometBFT
// endpoints, and the consensus process reaches geth's Engine API on
// loopback. A namespace owned by geth or the agent would vanish when that
// container restarts and leave the other without a network; this process
// never fails, so its namespace outlives both.
//
// It does nothing but wait for SIGTERM or SIGINT, and is built into the
// consortium image by deploy/build-images.sh (the images have no shell and
// no sleep).
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
}
