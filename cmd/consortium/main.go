// Command consortium runs every part of a consortium of Ethereum networks:
// the registrar, the agent beside each client, the discovery bootnode, and
// the tools that create a consortium. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/consortium/consortium/internal/cliflags"
	"github.com/urfave/cli/v3"
)

// env is what a command may touch of the outside world, so tests can run
// commands in-process.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// source is the environment variable key as a flag's value source, read
// through e.getenv (cliflags.Getenv.Source): the help shows [$KEY].
func (e *env) source(key string) cli.ValueSourceChain {
	return cliflags.Getenv(e.getenv).Source(key)
}

var version = "dev"

// errUsage marks a usage error: main prints the message and exits 2.
// It is cliflags', so the flags shared with the agent-only build give the
// same exit status.
var errUsage = cliflags.ErrUsage

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "consortium:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run runs the command line args (without the program's name). --help and
// -h print a command's help to stdout and return nil before the command
// reads anything: no flag's environment variable, no credential, no file.
func run(ctx context.Context, e *env, args []string) error {
	return rootCommand(e).Run(ctx, append([]string{"consortium"}, args...))
}

// rootCommand is the whole command tree. It is made anew for every run:
// urfave/cli keeps the parsed values in the flags.
func rootCommand(e *env) *cli.Command {
	root := &cli.Command{
		Name:                  "consortium",
		Usage:                 "run every part of a consortium of Ethereum networks",
		UsageText:             "consortium COMMAND [flags] [arguments]   (flags may come before or after the arguments; -- ends them)",
		Writer:                e.stdout,
		ErrWriter:             e.stderr,
		HideVersion:           true,
		EnableShellCompletion: true,
		// The completion command is listed, and has no help subcommand
		// of the library's (which refuses --help).
		ConfigureShellCompletionCommand: func(c *cli.Command) {
			c.Hidden, c.HideHelpCommand = false, true
			c.Usage = "print the shell completion script: consortium completion bash|zsh|fish (see docs/operations.md)"
		},
		Action: group(e),
		Commands: []*cli.Command{
			registrarCommand(e),
			memberCommand(e),
			nodeCommand(e),
			etcdCommand(e),
			bootnodeCommand(e),
			agentCommand(e),
			initCommand(e),
			devnetCommand(e),
			healthcheckCommand(e),
			{
				Name:  "version",
				Usage: "print the version",
				Action: func(ctx context.Context, cmd *cli.Command) error {
					if err := noArgs(cmd); err != nil {
						return err
					}
					fmt.Fprintln(e.stdout, version)
					return nil
				},
			},
		},
	}
	root.Walk(func(c *cli.Command) error {
		if len(c.Commands) == 0 {
			// A leaf's arguments are its own: `node remove help` names
			// a node, not the library's help command.
			c.HideHelpCommand = true
		} else {
			c.Commands = append(c.Commands, helpCommand(e))
		}
		return nil
	})
	return cliflags.Prepare(root)
}

// helpCommand is `help [COMMAND...]` of a command with subcommands: the
// help of the command named, as --help prints it. It replaces the
// library's, which refuses --help itself.
func helpCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:            "help",
		Usage:           "show the help of a command",
		ArgsUsage:       "[COMMAND...]",
		HideHelpCommand: true,
		Action: func(ctx context.Context, cmd *cli.Command) error {
			parent := cmd.Lineage()[1]
			var path []string
			for _, c := range parent.Lineage() {
				if c.Root() != c {
					path = append([]string{c.Name}, path...)
				}
			}
			for c, i := parent, 0; i < cmd.NArg(); i++ {
				name := cmd.Args().Get(i)
				if c = c.Command(name); c == nil {
					return fmt.Errorf("%w: unknown command %q (see '%s --help')", errUsage, name, parent.FullName())
				}
				path = append(path, name)
			}
			// A context of its own: the tree runs anew, and ctx holds
			// this run's command (urfave/cli would take it as the new
			// root's parent).
			return run(context.Background(), e, append(path, "--help"))
		},
	}
}

// group is the action of a command that only holds subcommands: run
// without one, or with a name that is none of them, it lists them on
// stderr and is a usage error.
func group(e *env) cli.ActionFunc {
	return func(ctx context.Context, cmd *cli.Command) error {
		fmt.Fprintf(e.stderr, "usage: %s COMMAND [flags]\n\ncommands:\n", cmd.FullName())
		for _, c := range cmd.VisibleCommands() {
			fmt.Fprintf(e.stderr, "  %-15s %s\n", c.Name, c.Usage)
		}
		fmt.Fprintf(e.stderr, "\nRun '%s COMMAND --help' for a command's flags.\n", cmd.FullName())
		if cmd.NArg() == 0 {
			return fmt.Errorf("%w: a command is required", errUsage)
		}
		return fmt.Errorf("%w: unknown command %q", errUsage, cmd.Args().First())
	}
}

// noArgs refuses positional arguments for a command that takes none.
func noArgs(cmd *cli.Command) error {
	if cmd.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q (see '%s --help')", errUsage, cmd.Args().First(), cmd.FullName())
	}
	return nil
}

// newLogger makes the logger of --log-format and --log-level.
var newLogger = cliflags.NewLogger

// logFlags are --log-format and --log-level.
func logFlags() []cli.Flag {
	return []cli.Flag{
		cliflags.String("log-format", "text", "text or json"),
		cliflags.String("log-level", "info", "debug, info, warn or error"),
	}
}

// flags joins flag lists.
func flags(lists ...[]cli.Flag) []cli.Flag {
	var all []cli.Flag
	for _, l := range lists {
		all = append(all, l...)
	}
	return all
}
