// Package cliflags holds what every command line of this repository
// shares: the usage error, the flag constructors (urfave/cli/v3), the
// logger flags' parsing and the flags of a registrar client. The
// consortium binary (cmd/consortium) and the agent-only build
// (internal/agent/agentonly) both use it, so a flag is defined, documented
// and read from its environment variable in one place.
package cliflags

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/urfave/cli/v3"
)

// ErrUsage marks a usage error: the command line is wrong, and main
// prints the message and exits 2.
var ErrUsage = errors.New("usage")

// Getenv reads an environment variable (os.Getenv, or a map in tests).
type Getenv func(string) string

// EnvOr returns the environment variable key, or def when it is unset or
// empty.
func EnvOr(getenv Getenv, key, def string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return def
}

// Source is the environment variable key as a flag's value source: the
// flag takes its value from it when the command line does not give one,
// and the help shows [$KEY]. It reads through getenv rather than
// os.Getenv, so tests run commands in-process with their own environment;
// an empty variable counts as unset, as EnvOr has it.
func (getenv Getenv) Source(key string) cli.ValueSourceChain {
	return cli.NewValueSourceChain(envSource{getenv: getenv, key: key})
}

type envSource struct {
	getenv Getenv
	key    string
}

func (s envSource) Lookup() (string, bool) {
	v := s.getenv(s.key)
	return v, v != ""
}

func (s envSource) IsFromEnv() bool  { return true }
func (s envSource) Key() string      { return s.key }
func (s envSource) String() string   { return "environment variable " + s.key }
func (s envSource) GoString() string { return fmt.Sprintf("envSource{%q}", s.key) }

// NewLogger makes the logger of --log-format (text or json) and
// --log-level (debug, info, warn or error).
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level: %v", ErrUsage, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%w: --log-format must be text or json", ErrUsage)
}

// Prepare makes a command tree behave as this repository's mains need:
// a wrong command line (an unknown flag, a flag without its value, a
// value that does not parse) is an error wrapping ErrUsage, printed once
// by main, and the library never exits the process itself (only main
// exits: it maps ErrUsage to status 2, other errors to 1). --help after
// a command's arguments (`member add acme --help`) prints the command's
// help: the library alone would look for a help topic "acme".
func Prepare(root *cli.Command) *cli.Command {
	root.ExitErrHandler = func(context.Context, *cli.Command, error) {}
	root.Walk(func(c *cli.Command) error {
		c.OnUsageError = usageError
		if len(c.Commands) == 0 {
			c.CommandNotFound = leafHelp
		}
		return nil
	})
	return root
}

// leafHelp prints the help of c, a command without subcommands, asked for
// with arguments.
func leafHelp(ctx context.Context, c *cli.Command, _ string) {
	if l := c.Lineage(); len(l) > 1 {
		_ = cli.ShowCommandHelp(ctx, l[1], c.Name)
		return
	}
	_ = cli.ShowRootCommandHelp(c)
}

func usageError(_ context.Context, cmd *cli.Command, err error, _ bool) error {
	return fmt.Errorf("%w: %v (see '%s --help')", ErrUsage, err, cmd.FullName())
}
