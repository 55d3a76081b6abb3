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

// newFollower is the chain follower of --chain-rpc that makes the
// registry's members those of the chain, or nil when it is off.
func newFollower(log *slog.Logger, reg *registry.Registry, chainURLs []string) *chainfollow.Follower {
	if chainURLs == nil {
		return nil
	}
	f, err := chainfollow.New(chainfollow.Config{URLs: chainURLs, Logger: log.With("component", "chainfollow")}, reg)
	if err != nil { // parseChainRPC refused what New would
		panic(err)
	}
	return f
}

// runRegistry runs the registry's loops and, when there is one, the chain
// follower; it returns when both have stopped, after ctx ends.
func runRegistry(ctx context.Context, log *slog.Logger, reg *registry.Registry, f *chainfollow.Follower) {
	var wg sync.WaitGroup
	if f != nil {
		log.Info("members follow the chain", "chain_rpc", f.URLs())
		wg.Add(1)
		go func() { defer wg.Done(); f.Run(ctx) }()
	}
	reg.Run(ctx)
	wg.Wait()
}
