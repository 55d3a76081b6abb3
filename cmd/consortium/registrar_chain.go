package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/consortium/consortium/internal/chainfollow"
	"github.com/consortium/consortium/internal/registry"
)

// parseChainRPC reads --chain-rpc; nil when it is empty (a Clique
// consortium, or a registrar whose administrator manages the members).
func parseChainRPC(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	urls, err := chainfollow.ParseURLs(s)
	if err != nil {
		return nil, fmt.Errorf("%w: --chain-rpc: %v", errUsage, err)
	}
	return urls, nil
}

// runRegistry runs the registry's loops and, with chain endpoints, the
// follower that makes its members those of the chain; it returns when
// both have stopped, after ctx ends.
func runRegistry(ctx context.Context, log *slog.Logger, reg *registry.Registry, chainURLs []string) {
	var wg sync.WaitGroup
	if chainURLs != nil {
		f, err := chainfollow.New(chainfollow.Config{URLs: chainURLs, Logger: log.With("component", "chainfollow")}, reg)
		if err != nil { // parseChainRPC refused what New would
			panic(err)
		}
		log.Info("members follow the chain", "chain_rpc", chainURLs)
		wg.Add(1)
		go func() { defer wg.Done(); f.Run(ctx) }()
	}
	reg.Run(ctx)
	wg.Wait()
}
