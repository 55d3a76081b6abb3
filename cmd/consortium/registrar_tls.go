package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/consortium/consortium/internal/certreload"
)

// reloadingCert serves the registrar's certificate from --tls-cert and
// --tls-key and takes a renewed pair without a restart: a handshake looks
// at the files at most once a second, and SIGHUP makes it look at once
// (certreload). A pair that does not load at start is an error; later, the
// previous certificate is kept and the log says why.
func reloadingCert(ctx context.Context, log *slog.Logger, certFile, keyFile string) (*certreload.Reloader, error) {
	certs, err := certreload.New(certreload.Config{CertFile: certFile, KeyFile: keyFile, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				certs.Reload() // logs what it did
			}
		}
	}()
	return certs, nil
}
