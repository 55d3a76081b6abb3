// Command probe opens a TCP connection to each address given and prints one
// line per address: "ADDR connected" or "ADDR refused: ERR". The e2e suite
// runs it, static, in a stranger's container on the compose consortium's
// internet network (test/e2e/bft_test.go, "stranger cannot connect"): the
// consortium image has no shell and no tool that only dials.
//
//	probe [-timeout 3s] HOST:PORT...
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 3*time.Second, "how long one connection attempt may take")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: probe [-timeout 3s] HOST:PORT...")
		os.Exit(2)
	}
	lines := make([]string, flag.NArg())
	var wg sync.WaitGroup
	for i, addr := range flag.Args() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", addr, *timeout)
			if err != nil {
				lines[i] = fmt.Sprintf("%s refused: %v", addr, err)
				return
			}
			conn.Close()
			lines[i] = addr + " connected"
		}()
	}
	wg.Wait()
	for _, l := range lines {
		fmt.Println(l)
	}
}
