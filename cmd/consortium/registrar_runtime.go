package main

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"time"
)

// memoryLimit is the soft limit --memory-limit asks for, in bytes:
// math.MaxInt64 (none) for "off", a number of MiB, or for "auto" 56 MiB
// plus 48 KiB per allowed connection. Each open connection holds some
// 40 KB, and a limit below the live heap makes the collector run without
// pause (at 56 MiB flat, a flood at the connection cap cost the registrar
// both cores and answers came seconds late; docs/ha.md saw the same with
// 700 blocking queries).
func memoryLimit(v string, maxConns int) (int64, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "off", "0":
		return math.MaxInt64, nil
	case "auto", "":
		return 56<<20 + int64(max(maxConns, 0))*48<<10, nil
	}
	mb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), "MiB"), 10, 64)
	if err != nil || mb < 0 || mb > 1<<30 {
		return 0, fmt.Errorf("%w: --memory-limit must be auto, off or a number of MiB, not %q", errUsage, v)
	}
	return mb << 20, nil
}

// servePprof serves net/http/pprof on addr (--pprof-listen) until stop is
// called. It has its own listener and mux, so nothing of it is reachable
// through the API port.
func servePprof(log *slog.Logger, addr string) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof-listen %s: %v", addr, err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
		log.Warn("the profiler is served beyond loopback (--pprof-listen): it shows the process's memory to whoever reaches it", "addr", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("the profiler's server stopped", "err", err)
		}
	}()
	log.Info("profiler serving", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { hs.Close() }, nil
}
