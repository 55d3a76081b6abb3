package cliflags

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"
)

// parse runs a command with flags on args and returns it, to read the
// flags' values from.
func parse(t *testing.T, flags []cli.Flag, args ...string) *cli.Command {
	t.Helper()
	var parsed *cli.Command
	cmd := Prepare(&cli.Command{Name: "t", Flags: flags, Writer: io.Discard, ErrWriter: io.Discard,
		Action: func(_ context.Context, c *cli.Command) error { parsed = c; return nil }})
	if err := cmd.Run(context.Background(), append([]string{"t"}, args...)); err != nil || parsed == nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return parsed
}

func TestClientFlagsFromEnv(t *testing.T) {
	dir := t.TempDir()
	credFile := filepath.Join(dir, "cred")
	if err := os.WriteFile(credFile, []byte("  from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string // the credential, or "" for an error
	}{
		{"file from the environment", map[string]string{"CONSORTIUM_CREDENTIAL_FILE": credFile}, nil, "from-file"},
		{"file from the flag", nil, []string{"--credential-file", credFile}, "from-file"},
		{"the flag wins over the environment", map[string]string{"CONSORTIUM_CREDENTIAL_FILE": filepath.Join(dir, "missing")}, []string{"--credential-file", credFile}, "from-file"},
		{"the credential itself wins", map[string]string{"CONSORTIUM_CREDENTIAL": "direct"}, []string{"--credential-file", credFile}, "direct"},
		{"default file missing", nil, nil, ""},
		{"an empty variable is unset", map[string]string{"CONSORTIUM_CREDENTIAL_FILE": ""}, nil, ""},
	} {
		getenv := Getenv(func(k string) string { return tc.env[k] })
		c := ReadClient(parse(t, ClientFlags(getenv, filepath.Join(dir, "missing"), "member"), tc.args...))
		got, err := c.Credential(getenv)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "CONSORTIUM_CREDENTIAL") || !strings.Contains(err.Error(), "missing") {
				t.Errorf("%s: %q, %v; want an error naming CONSORTIUM_CREDENTIAL and the default file", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	// Every flag but --allow-insecure takes its value from its
	// environment variable, and the help names the variable.
	env := map[string]string{"CONSORTIUM_REGISTRAR": "https://r.example:9898", "CONSORTIUM_CA": "ca.pem", "CONSORTIUM_CREDENTIAL": "c"}
	getenv := Getenv(func(k string) string { return env[k] })
	flags := ClientFlags(getenv, "credential", "administrator")
	c := ReadClient(parse(t, flags))
	if c.URL != "https://r.example:9898" || c.CA != "ca.pem" || c.CredFile != "credential" || c.Insecure {
		t.Errorf("from the environment: %+v", c)
	}
	for _, f := range flags {
		s := f.String()
		name := f.Names()[0]
		if name != "allow-insecure" && !strings.Contains(s, "[$CONSORTIUM_") {
			t.Errorf("--%s help %q names no environment variable", name, s)
		}
		if name == "credential-file" && !strings.Contains(s, "administrator credential") {
			t.Errorf("--credential-file help: %q", s)
		}
	}
	// Client uses them: the CA file of CONSORTIUM_CA is read.
	if _, err := c.Client(getenv, nil); err == nil || !strings.Contains(err.Error(), "ca.pem") {
		t.Errorf("Client with a missing CA file: %v", err)
	}
}

// TestPrepare: a wrong command line is a usage error, whatever the
// command's depth, and the library exits nothing itself.
func TestPrepare(t *testing.T) {
	var out bytes.Buffer
	root := Prepare(&cli.Command{Name: "t", Writer: &out, ErrWriter: &out, Commands: []*cli.Command{{
		Name: "sub", Flags: []cli.Flag{Duration("d", 0, "a duration"), String("s", "", "a string")},
		Action: func(context.Context, *cli.Command) error { return cli.Exit("failed", 3) },
	}}})
	for _, args := range [][]string{{"sub", "--d", "x"}, {"sub", "--nope"}, {"sub", "--s"}} {
		if err := root.Run(context.Background(), append([]string{"t"}, args...)); !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v; want a usage error", args, err)
		}
	}
	// An ExitCoder error is returned, not turned into os.Exit (this test
	// would end here).
	if err := root.Run(context.Background(), []string{"t", "sub"}); err == nil || err.Error() != "failed" {
		t.Errorf("sub: %v", err)
	}
	// Help after an argument is the command's help.
	out.Reset()
	if err := root.Run(context.Background(), []string{"t", "sub", "arg", "--help"}); err != nil || !strings.Contains(out.String(), "a duration") {
		t.Errorf("sub arg --help: %v:\n%s", err, out.String())
	}
}

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		format, level string
		usage         bool
		json          bool
		debug         bool
	}{
		{"text", "info", false, false, false},
		{"", "debug", false, false, true},
		{"JSON", "warn", false, true, false},
		{"xml", "info", true, false, false},
		{"text", "loud", true, false, false},
	} {
		var buf bytes.Buffer
		log, err := NewLogger(&buf, tc.format, tc.level)
		if tc.usage {
			if !errors.Is(err, ErrUsage) {
				t.Errorf("%q %q: err %v, want a usage error", tc.format, tc.level, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q %q: %v", tc.format, tc.level, err)
		}
		log.Debug("d")
		log.Warn("w")
		out := buf.String()
		if strings.HasPrefix(out, "{") != tc.json || strings.Contains(out, "msg=d") != (tc.debug && !tc.json) || !strings.Contains(out, "w") {
			t.Errorf("%q %q: logged %q", tc.format, tc.level, out)
		}
	}
	if _, err := NewLogger(io.Discard, "text", "error"); err != nil {
		t.Error(err)
	}
}

func TestEnvOr(t *testing.T) {
	env := map[string]string{"SET": "v", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	if EnvOr(getenv, "SET", "d") != "v" || EnvOr(getenv, "EMPTY", "d") != "d" || EnvOr(getenv, "UNSET", "d") != "d" {
		t.Error("EnvOr")
	}
}
