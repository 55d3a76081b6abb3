// Command probe is the e2e suite's one helper inside the compose
// consortium; the consortium image has no shell and no tool that only
// dials or reads a socket. Two modes:
//
//	probe [-timeout 3s] HOST:PORT...
//
// opens a TCP connection to each address given and prints one line per
// address: "ADDR connected" or "ADDR refused: ERR". The suite runs it, static,
// in a stranger's container on the internet network (test/e2e/bft_test.go,
// "stranger cannot connect").
//
//	probe -serve ADDR -ipc-dir DIR
//
// serves HTTP on ADDR and passes each POST to /NODE, a JSON-RPC request
// (or batch), to the geth IPC socket DIR/NODE/geth.ipc, answering with
// geth's reply. The suite runs it in one container with every geth node's
// data volume mounted under DIR, so it reads every node's head, blocks and
// peers over one HTTP port: a `docker exec ... geth attach` per read (a
// JavaScript console started in the node's container) took 23 s on the
// loaded test machine, and twelve at once missed their bounds.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

func main() {
	timeout := flag.Duration("timeout", 3*time.Second, "how long one connection attempt may take")
	serve := flag.String("serve", "", "serve JSON-RPC to the geth IPC sockets under -ipc-dir on this address")
	ipcDir := flag.String("ipc-dir", "/ipc", "with -serve: DIR/NODE/geth.ipc is node NODE's socket")
	flag.Parse()
	if *serve != "" {
		srv := &http.Server{Addr: *serve, Handler: ipcProxy{dir: *ipcDir}, ReadHeaderTimeout: 10 * time.Second}
		fmt.Fprintln(os.Stderr, srv.ListenAndServe())
		os.Exit(1)
	}
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: probe [-timeout 3s] HOST:PORT... | probe -serve ADDR -ipc-dir DIR")
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

// ipcProxy passes a JSON-RPC request to a geth IPC socket.
type ipcProxy struct{ dir string }

func (p ipcProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	node := strings.Trim(r.URL.Path, "/")
	if r.Method != http.MethodPost || node == "" || strings.ContainsAny(node, "/.") {
		http.Error(w, "POST a JSON-RPC request to /NODE", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || !json.Valid(body) {
		http.Error(w, "the body is not JSON", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", filepath.Join(p.dir, node, "geth.ipc"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	// geth answers one JSON value per request, a batch with one array.
	var reply json.RawMessage
	if err := json.NewDecoder(conn).Decode(&reply); err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(reply)
}
