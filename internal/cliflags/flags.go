package cliflags

import (
	"time"

	"github.com/urfave/cli/v3"
)

// The flag constructors below make local flags: urfave/cli applies a
// command's flags to its subcommands too unless they are local, and
// `registrar migrate` must not silently take `registrar`'s --listen.
// env, when given, is the flag's value source (Getenv.Source). A number
// whose default is 0 shows no "(default: 0)": its usage says what 0 means.

// String is a string flag.
func String(name, value, usage string, env ...cli.ValueSourceChain) *cli.StringFlag {
	return &cli.StringFlag{Name: name, Value: value, Usage: usage, Local: true, Sources: sources(env)}
}

// Bool is a boolean flag: --name, --name=true or --name=false.
func Bool(name string, value bool, usage string) *cli.BoolFlag {
	return &cli.BoolFlag{Name: name, Value: value, Usage: usage, Local: true}
}

// Duration is a flag of a time.ParseDuration value.
func Duration(name string, value time.Duration, usage string) *cli.DurationFlag {
	return &cli.DurationFlag{Name: name, Value: value, Usage: usage, Local: true, HideDefault: value == 0}
}

// Int is an int flag.
func Int(name string, value int, usage string) *cli.IntFlag {
	return &cli.IntFlag{Name: name, Value: value, Usage: usage, Local: true, HideDefault: value == 0}
}

// Int64 is an int64 flag.
func Int64(name string, value int64, usage string) *cli.Int64Flag {
	return &cli.Int64Flag{Name: name, Value: value, Usage: usage, Local: true, HideDefault: value == 0}
}

// Uint64 is a uint64 flag.
func Uint64(name string, value uint64, usage string) *cli.Uint64Flag {
	return &cli.Uint64Flag{Name: name, Value: value, Usage: usage, Local: true, HideDefault: value == 0}
}

// Float is a float64 flag.
func Float(name string, value float64, usage string) *cli.FloatFlag {
	return &cli.FloatFlag{Name: name, Value: value, Usage: usage, Local: true}
}

// Generic is a flag of a value of its own (a list that --name adds to,
// for example).
func Generic(name string, value cli.Value, usage string) *cli.GenericFlag {
	return &cli.GenericFlag{Name: name, Value: value, Usage: usage, Local: true}
}

func sources(env []cli.ValueSourceChain) cli.ValueSourceChain {
	var c cli.ValueSourceChain
	for _, e := range env {
		c.Append(e)
	}
	return c
}
