// Command agentonly is the agent alone, for Clique nodes: `consortium
// agent run`'s flags and loop (internal/agent/agentcli) without the
// consensus process of BFT nodes, linked without the registrar, CometBFT,
// etcd and SQLite. Its binary is a fifth of the full one's, and an agent's
// RSS is mostly its binary's resident pages (docs/benchmarks.md, "Agent
// RSS"). The consortium image ships it as /usr/local/bin/consortium-agent
// (deploy/build-images.sh):
//
//	consortium-agent --role tx --rpc /data/geth.ipc ...   # = consortium agent run ...
//
// It also keeps its memory small by default: GOGC=50 and a soft memory
// limit of 8 MiB (GOMEMLIMIT) unless the environment sets them, and it
// releases its mapping of its binary's pages 30 s after start and every 5
// minutes after that, so its RSS counts the pages it uses
// (release_linux.go; CONSORTIUM_AGENT_RELEASE=off leaves them).
//
//	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o consortium-agent ./internal/agent/agentonly
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/consortium/consortium/internal/agent/agentcli"
	"github.com/consortium/consortium/internal/cliflags"
)

// Defaults of the Go runtime's memory knobs for the agent, applied unless
// GOGC or GOMEMLIMIT is set. The agent's live heap is 1.5-3 MiB beside
// geth (the secp256k1 table, the registrar's answer, RPC buffers): GOGC=50
// lowers the runtime's 4 MiB minimum heap goal to 2 MiB, and the soft
// limit makes the collector run, and the scavenger return pages, before
// the runtime's memory passes 8 MiB. It is soft: a larger live heap
// still works, at the cost of more frequent collections.
const (
	defaultGOGC     = 50
	defaultMemLimit = 8 << 20
)

// When the binary's pages are released: once the agent has registered and
// reconciled (its steady loop), then now and then, as rarely used code
// (an outage's, a restart's) brings pages back.
const (
	firstRelease = 30 * time.Second
	releaseEvery = 5 * time.Minute
)

func main() {
	memoryDefaults(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stderr, os.Getenv, os.Args[1:])
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
		// Help was asked for and printed: not a failure.
	case errors.Is(err, cliflags.ErrUsage):
		fmt.Fprintln(os.Stderr, "consortium-agent:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "consortium-agent:", err)
		os.Exit(1)
	}
}

// memoryDefaults sets GOGC and the memory limit to the agent's defaults,
// each unless its environment variable is set.
func memoryDefaults(getenv cliflags.Getenv) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGOGC)
	}
	if getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemLimit)
	}
}

func run(ctx context.Context, stderr io.Writer, getenv cliflags.Getenv, args []string) error {
	fs := flag.NewFlagSet("consortium-agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	rf := agentcli.AddRunFlags(fs, getenv)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", cliflags.ErrUsage, err)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (consortium-agent takes flags only)", cliflags.ErrUsage, fs.Arg(0))
	}
	r, err := rf.Check(stderr, getenv)
	if err != nil {
		return err
	}
	if getenv("CONSORTIUM_AGENT_RELEASE") != "off" {
		go releaseLoop(ctx, r.Log, firstRelease, releaseEvery)
	}
	return agentcli.Serve(ctx, r, nil)
}

// releaseLoop calls releaseBinaryPages after first and then every every,
// until ctx ends.
func releaseLoop(ctx context.Context, log *slog.Logger, first, every time.Duration) {
	t := time.NewTimer(first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := releaseBinaryPages()
		if err != nil {
			log.Warn("releasing the binary's pages", "err", err)
			return
		}
		log.Debug("released the binary's resident pages", "MiB", float64(n)/(1<<20))
		t.Reset(every)
	}
}
