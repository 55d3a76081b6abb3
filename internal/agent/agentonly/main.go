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
	"github.com/consortium/consortium/internal/ctxtime"
	"github.com/urfave/cli/v3"
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
	err := run(ctx, os.Stdout, os.Stderr, os.Getenv, os.Args[1:])
	stop()
	switch {
	case err == nil:
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

// run is `consortium agent run` alone: flags only, no subcommand. --help
// prints the flags to stdout and returns nil before anything is read.
func run(ctx context.Context, stdout, stderr io.Writer, getenv cliflags.Getenv, args []string) error {
	cmd := cliflags.Prepare(&cli.Command{
		Name:      "consortium-agent",
		Usage:     "keep a Clique node's peers equal to the registrar's answer (consortium agent run, without the consensus process)",
		UsageText: "consortium-agent --role ROLE --rpc ENDPOINT [flags]",
		Writer:    stdout, ErrWriter: stderr,
		HideHelpCommand: true,
		Flags:           agentcli.Flags(getenv),
		Action: func(ctx context.Context, cmd *cli.Command) error {
			if cmd.NArg() > 0 {
				return fmt.Errorf("%w: unexpected argument %q (consortium-agent takes flags only)", cliflags.ErrUsage, cmd.Args().First())
			}
			r, err := agentcli.ReadFlags(cmd).Check(stderr, getenv)
			if err != nil {
				return err
			}
			if getenv("CONSORTIUM_AGENT_RELEASE") != "off" {
				go releaseLoop(ctx, r.Log, firstRelease, releaseEvery)
			}
			return agentcli.Serve(ctx, r, nil)
		},
	})
	return cmd.Run(ctx, append([]string{"consortium-agent"}, args...))
}

// releaseLoop calls releaseBinaryPages after first and then every every,
// until ctx ends.
func releaseLoop(ctx context.Context, log *slog.Logger, first, every time.Duration) {
	for wait := first; ctxtime.Sleep(ctx, wait); wait = every {
		n, err := releaseBinaryPages()
		if err != nil {
			log.Warn("releasing the binary's pages", "err", err)
			return
		}
		log.Debug("released the binary's resident pages", "MiB", float64(n)/(1<<20))
	}
}
