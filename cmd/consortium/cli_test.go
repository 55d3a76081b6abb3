package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v3"
)

// commandPaths is every command of the tree, the root's first, each as
// its words after "consortium": the library's own (help, completion) too,
// since they appear once the tree has run.
func commandPaths(t *testing.T) [][]string {
	t.Helper()
	root := rootCommand(&env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }})
	if err := root.Run(context.Background(), []string{"consortium", "--help"}); err != nil {
		t.Fatal(err)
	}
	var paths [][]string
	var walk func(c *cli.Command, path []string)
	walk = func(c *cli.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands {
			walk(sub, append(slices.Clone(path), sub.Name))
		}
	}
	walk(root, nil)
	return paths
}

// recordingEnv is an env whose getenv records every variable asked for.
type recordingEnv struct {
	mu   sync.Mutex
	read []string
}

func (r *recordingEnv) env(stdout, stderr *bytes.Buffer) *env {
	return &env{stdout: stdout, stderr: stderr, getenv: func(k string) string {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.read = append(r.read, k)
		return ""
	}}
}

// TestHelpEveryCommand walks the whole command tree: --help and -h print
// the command's help (every visible flag in it) and succeed, and have no
// side effect: no credential is read (neither CONSORTIUM_CREDENTIAL nor
// CONSORTIUM_CREDENTIAL_FILE, nor the etcd password), no action runs
// (registrar would read GOMEMLIMIT), no file is made in the working
// directory (registrar and agent init would make data/, nodekey,
// agent-state/). The command's own flags read no environment variable
// either; a parent's do (registrar's, for registrar migrate --help), as
// urfave/cli sets a command's flags before it runs a subcommand. Help
// after a positional argument counts as well.
func TestHelpEveryCommand(t *testing.T) {
	t.Chdir(t.TempDir())
	paths := commandPaths(t)
	if len(paths) < 25 {
		t.Fatalf("the walk found only %d commands: %q", len(paths), paths)
	}
	extra := [][]string{{"member", "add", "acme", "--help"}, {"node", "remove", "abcdef01", "-h"}, {"registrar", "--listen", "127.0.0.1:1", "-h"}}
	var runs [][]string
	for _, p := range paths {
		runs = append(runs, append(slices.Clone(p), "--help"), append(slices.Clone(p), "-h"))
	}
	for _, args := range append(runs, extra...) {
		var rec recordingEnv
		var out, errb bytes.Buffer
		err := run(context.Background(), rec.env(&out, &errb), args)
		if err != nil {
			t.Errorf("%q: %v, want nil (exit 0)", args, err)
		}
		if !strings.Contains(out.String(), "USAGE:") {
			t.Errorf("%q: no help on stdout:\n%s\nstderr:\n%s", args, out.String(), errb.String())
		}
		for _, v := range rec.read {
			if v == "CONSORTIUM_CREDENTIAL" || v == "CONSORTIUM_CREDENTIAL_FILE" || v == "CONSORTIUM_ETCD_PASSWORD" || v == "GOMEMLIMIT" {
				t.Errorf("%q: help read %s", args, v)
			}
		}
		underRegistrar := len(args) > 2 && args[0] == "registrar" && (args[1] == "migrate" || args[1] == "help")
		if !underRegistrar && len(rec.read) > 0 {
			t.Errorf("%q: help read the environment: %q", args, rec.read)
		}
		if ents, _ := os.ReadDir("."); len(ents) > 0 {
			t.Errorf("%q: help made %s in the working directory", args, ents[0].Name())
			os.RemoveAll(ents[0].Name())
		}
	}
	// Every visible flag is in its command's help.
	for _, path := range paths {
		var out bytes.Buffer
		if err := run(context.Background(), &env{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}, append(slices.Clone(path), "--help")); err != nil {
			t.Errorf("%q --help: %v", path, err)
		}
		c := rootCommand(&env{getenv: func(string) string { return "" }})
		for _, name := range path {
			if c = c.Command(name); c == nil {
				break
			}
		}
		if c == nil { // the library's completion command: no flags
			continue
		}
		for _, f := range c.Flags {
			if n := f.Names()[0]; !strings.Contains(out.String(), "--"+n+" ") && !strings.Contains(out.String(), "--"+n+"\n") {
				t.Errorf("%q --help lacks --%s:\n%s", path, n, out.String())
			}
		}
	}
}

// binary runs the test binary as the consortium binary in dir and returns
// its output and exit status.
func binary(t *testing.T, dir string, envv []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CONSORTIUM_RUN_MAIN=1"), envv...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan struct{})
	go func() {
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
		}
	}()
	err := cmd.Run()
	close(done)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%q: %v", args, err)
	}
	return out.String(), 0
}

// TestExitStatus runs the real binary: help exits 0 (with a credential
// file that does not exist: help does not read it; TestHelpEveryCommand
// walks every command in-process, where nil is exit 0), usage errors 2
// with the message on stderr, runtime errors 1.
func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	noCred := []string{"CONSORTIUM_CREDENTIAL_FILE=" + filepath.Join(dir, "nonexistent"), "CONSORTIUM_DATA=" + filepath.Join(dir, "data")}
	for _, p := range [][]string{{"--help"}, {"-h"}, {"help"}, {"member", "--help"}, {"member", "add", "acme", "-h"}, {"member", "help", "propose"},
		{"registrar", "migrate", "--help"}, {"agent", "run", "-h"}, {"node", "list", "--help"}, {"completion", "bash", "--help"}} {
		if out, code := binary(t, dir, noCred, p...); code != 0 || !strings.Contains(out, "USAGE:") {
			t.Errorf("%q: exit %d:\n%s", p, code, out)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Errorf("help made %s", ents[0].Name())
	}
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{nil, 2, "a command is required"},
		{[]string{"nope"}, 2, `unknown command "nope"`},
		{[]string{"member"}, 2, "a command is required"},
		{[]string{"member", "frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"registrar", "--ttl", "x"}, 2, "invalid value"},
		{[]string{"member", "add", "--no-such-flag", "acme"}, 2, "no-such-flag"},
		{[]string{"member", "add"}, 2, "NAME"},
		{[]string{"version", "extra"}, 2, "unexpected argument"},
		{[]string{"member", "list", "--registrar", "http://127.0.0.1:1"}, 1, "reading the credential"},
		{[]string{"healthcheck", "--timeout", "2s", "http://127.0.0.1:1/healthz"}, 1, "unhealthy"},
		{[]string{"version"}, 0, "dev"},
	} {
		out, code := binary(t, dir, noCred, c.args...)
		if code != c.code || !strings.Contains(out, c.msg) {
			t.Errorf("%q: exit %d, want %d with %q:\n%s", c.args, code, c.code, c.msg, out)
		}
		if c.code == 2 && !strings.Contains(out, "consortium: usage:") {
			t.Errorf("%q: no usage message:\n%s", c.args, out)
		}
	}
}

// TestFlagsAnywhere: flags after positional arguments are flags (the
// standard flag package took them as arguments), and "--" ends them.
func TestFlagsAnywhere(t *testing.T) {
	dir := t.TempDir()
	url := startInProcessRegistrar(t, dir, time.Minute)
	admin := filepath.Join(dir, AdminCredentialFile)
	out, _, err := cliRun(nil, "member", "add", "acme", "--registrar", url, "--credential-file", admin)
	if err != nil || !strings.HasPrefix(out, "acme.") {
		t.Fatalf("member add acme --registrar URL: %q, %v", out, err)
	}
	out, _, err = cliRun(nil, "member", "list", "--registrar="+url, "-credential-file", admin)
	if err != nil || !strings.Contains(out, "acme") {
		t.Fatalf("member list with --flag=value and -flag: %q, %v", out, err)
	}
	// After "--", "--wide" is a node ID to remove, not node list's flag.
	_, _, err = cliRun(nil, "node", "remove", "--registrar", url, "--credential-file", admin, "--", "--wide")
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), `"--wide" is not a node ID`) {
		t.Fatalf("node remove -- --wide: %v; want --wide read as an ID", err)
	}
	// A flag of another command is refused, not taken as an argument,
	// nor taken from the parent command (urfave/cli's flags apply to the
	// subcommands unless local).
	for _, args := range [][]string{{"member", "add", "acme", "--wide"}, {"registrar", "migrate", "--listen", "127.0.0.1:1"}, {"devnet", "add-member", "e", "--consensus", "bft"}} {
		_, _, err = cliRun(nil, args...)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "flag provided but not defined") {
			t.Errorf("%q: %v; want a usage error", args, err)
		}
	}
}

// credentialOrURLFlags are the flags that name a credential, a key or a
// URL: each reads an environment variable. Not listed: the new member's
// --credential-file of member propose (the proposer's own
// CONSORTIUM_CREDENTIAL_FILE is another credential) and agent run's
// --consensus-rpc (an address to serve on, off unless given).
var credentialOrURLFlags = map[string]string{
	"registrar": "CONSORTIUM_REGISTRAR", "credential-file": "CONSORTIUM_CREDENTIAL_FILE", "ca": "CONSORTIUM_CA",
	"store": "CONSORTIUM_STORE", "chain-rpc": "CONSORTIUM_CHAIN_RPC",
	"tls-cert": "CONSORTIUM_TLS_CERT", "tls-key": "CONSORTIUM_TLS_KEY", "dns-key": "CONSORTIUM_DNS_KEY",
	"etcd-cacert": "CONSORTIUM_ETCD_CACERT", "etcd-cert": "CONSORTIUM_ETCD_CERT", "etcd-key": "CONSORTIUM_ETCD_KEY", "etcd-user": "CONSORTIUM_ETCD_USER",
	"consensus-rpc": "CONSORTIUM_CONSENSUS_RPC", "validator-key": "CONSORTIUM_VALIDATOR_KEY",
	"rpc": "CONSORTIUM_RPC", "engine": "CONSORTIUM_ENGINE", "jwt-secret": "CONSORTIUM_JWT_SECRET",
}

// TestCredentialAndURLFlagsReadTheEnvironment: every credential or URL
// flag of the tree reads its environment variable, and its help says
// which ([$VAR]).
func TestCredentialAndURLFlagsReadTheEnvironment(t *testing.T) {
	exempt := map[string]bool{
		"consortium member propose --credential-file": true, "consortium member vote --credential-file": true,
		"consortium member proposals --credential-file": true, "consortium agent run --consensus-rpc": true,
	}
	root := rootCommand(&env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }})
	n := 0
	var walk func(c *cli.Command, path string)
	walk = func(c *cli.Command, path string) {
		for _, f := range c.Flags {
			name := f.Names()[0]
			want, ok := credentialOrURLFlags[name]
			if !ok || exempt[path+" --"+name] {
				continue
			}
			n++
			df, _ := f.(cli.DocGenerationFlag)
			if df == nil || !slices.Equal(df.GetEnvVars(), []string{want}) {
				t.Errorf("%s --%s: environment %v, want %s", path, name, df.GetEnvVars(), want)
			}
			if s := f.String(); !strings.Contains(s, "[$"+want+"]") {
				t.Errorf("%s --%s: help %q does not show $%s", path, name, s, want)
			}
		}
		for _, sub := range c.Commands {
			walk(sub, path+" "+sub.Name)
		}
	}
	walk(root, "consortium")
	if n < 30 {
		t.Errorf("only %d credential or URL flags checked", n)
	}
}

// TestEnvironmentVariables: the variable is used when the flag is not
// given, the flag wins over it, and an empty variable counts as unset.
func TestEnvironmentVariables(t *testing.T) {
	dir := t.TempDir()
	url := startInProcessRegistrar(t, dir, time.Minute)
	admin := filepath.Join(dir, AdminCredentialFile)
	vars := map[string]string{"CONSORTIUM_REGISTRAR": url, "CONSORTIUM_CREDENTIAL_FILE": admin}
	if out, _, err := cliRun(vars, "member", "add", "acme"); err != nil || !strings.HasPrefix(out, "acme.") {
		t.Fatalf("member add from the environment: %q, %v", out, err)
	}
	// The flag wins: a registrar that is not there.
	if _, _, err := cliRun(vars, "member", "list", "--registrar", "http://127.0.0.1:1"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("--registrar over CONSORTIUM_REGISTRAR: %v", err)
	}
	// Empty: the default (data/admin.credential, relative to a directory
	// without it).
	t.Chdir(t.TempDir())
	vars["CONSORTIUM_CREDENTIAL_FILE"] = ""
	if _, _, err := cliRun(vars, "member", "list"); err == nil || !strings.Contains(err.Error(), filepath.Join("data", AdminCredentialFile)) {
		t.Fatalf("empty CONSORTIUM_CREDENTIAL_FILE: %v; want the default file", err)
	}
}

// TestCompletion: `consortium completion SHELL` prints the shell's script,
// which asks the binary itself (--generate-shell-completion) for the
// words; that answer lists the commands and flags, and runs nothing.
func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "complete -o bashdefault -o default -F __consortium_bash_autocomplete consortium", "zsh": "#compdef consortium", "fish": "complete -c consortium"} {
		out, _, err := cliRun(nil, "completion", shell)
		if err != nil || !strings.Contains(out, want) || !strings.Contains(out, "--generate-shell-completion") {
			t.Errorf("completion %s: %v:\n%s", shell, err, out)
		}
	}
	out, _, err := cliRun(nil, "member", "--generate-shell-completion")
	if err != nil || !strings.Contains(out, "add") || !strings.Contains(out, "propose") {
		t.Errorf("member's completions: %v:\n%s", err, out)
	}
	var rec recordingEnv
	var stdout, stderr bytes.Buffer
	err = run(context.Background(), rec.env(&stdout, &stderr), []string{"node", "list", "--", "--generate-shell-completion"})
	if err != nil || len(rec.read) > 0 {
		t.Errorf("completing node list: %v, read %q", err, rec.read)
	}
	out, _, err = cliRun(nil, "node", "list", "--w", "--generate-shell-completion")
	if err != nil || !strings.Contains(out, "--wide") {
		t.Errorf("node list --w completions: %v:\n%s", err, out)
	}
}

// TestDevnetNodesRepeatable: --nodes may be given more than once, and a
// value keeps its commas (urfave/cli's slice flags would split it).
func TestDevnetNodesRepeatable(t *testing.T) {
	var got []string
	c := devnetCommand(&env{getenv: func(string) string { return "" }})
	c.Action = func(_ context.Context, cmd *cli.Command) error {
		got = devnetNodes(cmd)
		return nil
	}
	if err := c.Run(context.Background(), []string{"devnet", "--nodes", "validator,tx,public", "--nodes", "a:bootnode,validator=2"}); err != nil {
		t.Fatal(err)
	}
	if want := []string{"validator,tx,public", "a:bootnode,validator=2"}; !slices.Equal(got, want) {
		t.Fatalf("--nodes %q, want %q", got, want)
	}
}
