package devnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/dashboard"
	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store/sqlite"
)

// admin is the principal the devnet acts as inside its own registrar.
var admin = registry.Principal{Name: "admin", Admin: true}

// registrar is the consortium's registrar, run in this process the way
// `consortium registrar` runs it: SQLite in the data directory, seeded once
// from init's seed.json, the HTTP API on loopback.
type registrar struct {
	reg  *registry.Registry
	url  string
	stop func()
}

// startRegistrar opens the store in dataDir, applies seedPath to an empty
// registry and serves on ln until stop is called. extra handlers are mounted
// beside the API.
func startRegistrar(ctx context.Context, ln net.Listener, dataDir, seedPath string, ttl time.Duration, log *slog.Logger, extra map[string]http.Handler) (*registrar, error) {
	st, err := sqlite.Open(ctx, dataDir)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("opening the registrar's store in %s: %w", dataDir, err)
	}
	reg, err := registry.Open(ctx, st, registry.Config{TTL: ttl, Logger: log, AllowLoopbackEndpoints: true})
	if err != nil {
		st.Close()
		ln.Close()
		return nil, fmt.Errorf("loading the registry: %w", err)
	}
	if ms, _ := reg.Members(admin); len(ms) == 0 {
		if err := reg.ApplySeedFile(ctx, seedPath); err != nil {
			st.Close()
			ln.Close()
			return nil, err
		}
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	regDone := make(chan struct{})
	go func() { defer close(regDone); reg.Run(runCtx) }()
	dash := dashboard.New(dashboard.Config{Registry: reg, Logger: log})
	mounts := map[string]http.Handler{"/ui/": dash}
	for p, h := range extra {
		mounts[p] = h
	}
	dashDone := make(chan struct{})
	go func() { defer close(dashDone); dash.Run(runCtx) }()
	srv := httpapi.New(httpapi.Config{Registry: reg, Logger: log, Extra: mounts})
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("registrar stopped serving", "err", err)
		}
	}()
	r := &registrar{reg: reg, url: "http://" + ln.Addr().String()}
	r.stop = func() {
		sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer scancel()
		dash.Close()
		hs.Shutdown(sctx) // blocking queries end with the server's base context
		hs.Close()
		<-served
		cancel()
		<-regDone // flushes the leases
		<-dashDone
		st.Close()
	}
	log.Info("registrar serving", "url", r.url, "data", dataDir)
	return r, nil
}

// listen opens addr, naming the port in the error a person reads.
func listen(addr, what string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%w (%s for the %s: %v)", ErrPortTaken, addr, what, strings.TrimPrefix(err.Error(), "listen tcp "+addr+": "))
	}
	return ln, nil
}
