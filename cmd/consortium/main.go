// Command consortium runs every part of a consortium of Ethereum networks:
// the registrar, the agent beside each client, the discovery bootnode, and
// the tools that create a consortium. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/consortium/consortium/internal/cliflags"
)

// command is one subcommand. run gets its own arguments and returns an
// error; only main turns an error into an exit code.
type command struct {
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a command may touch of the outside world, so tests can run
// commands in-process.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

func commands() map[string]command {
	return map[string]command{
		"registrar":   {"run the registrar (the consortium's node directory)", runRegistrar},
		"member":      {"add, list or revoke members (registrar); propose, vote, proposals (validator set, on chain)", runMemberCommand},
		"node":        {"list node records, or remove one (a member its own, the administrator any)", runNode},
		"etcd":        {"run one member of an etcd cluster for highly available registrars (etcd, embedded)", runEtcd},
		"bootnode":    {"run a discv4+discv5 discovery bootnode that registers itself", runBootnode},
		"agent":       {"init: write a client's cold-start config; run: keep its peers live", runAgent},
		"init":        {"create a consortium: genesis, validator and node keys, credentials, the registrar's seed", runInit},
		"devnet":      {"run a whole consortium on this machine (builds geth once); add-member NAME", runDevnet},
		"healthcheck": {"exit 0 when a health URL answers 200 (for container HEALTHCHECKs)", runHealthcheck},
		"version":     {"print the version", func(ctx context.Context, e *env, args []string) error { fmt.Fprintln(e.stdout, version); return nil }},
	}
}

var version = "dev"

// errUsage marks a usage error: the message is printed with the usage.
// It is cliflags', so the flags shared with the agent-only build give the
// same exit status.
var errUsage = cliflags.ErrUsage

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "consortium:", err)
		}
		switch {
		case errors.Is(err, flag.ErrHelp):
			// Help was asked for and printed: not a failure.
			os.Exit(0)
		case errors.Is(err, errUsage):
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, e *env, args []string) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stderr, cmds)
		if len(args) == 0 {
			return fmt.Errorf("%w: a command is required", errUsage)
		}
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		usage(e.stderr, cmds)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	return c.run(ctx, e, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "usage: consortium COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'consortium COMMAND -h' for a command's flags.")
}

// isHelp reports whether a command's first argument asks for help.
func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

// subHelp prints a command's usage line for a command that has
// subcommands (each with its own flags), and returns flag.ErrHelp: main
// exits 0 and prints nothing more.
func subHelp(e *env, use, example string) error {
	fmt.Fprintf(e.stderr, "usage: %s\n\nRun '%s' for a subcommand's flags.\n", use, example)
	return flag.ErrHelp
}

func newFlags(e *env, name string) *flag.FlagSet {
	fs := flag.NewFlagSet("consortium "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

// parse parses flags wherever they are among the arguments, so
// `member add acme --registrar URL` means what it says; the standard flag
// package alone stops at the first positional argument. After "--" every
// argument is positional. fs.Args() returns the positional arguments.
func parse(fs *flag.FlagSet, args []string) error {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	// Parsing "--" and the positional arguments sets no flag, and leaves
	// them as fs.Args().
	return fs.Parse(append([]string{"--"}, pos...))
}

// newLogger makes the logger of --log-format and --log-level.
var newLogger = cliflags.NewLogger

// envOr returns the environment variable or def.
func envOr(e *env, key, def string) string {
	return cliflags.EnvOr(e.getenv, key, def)
}
