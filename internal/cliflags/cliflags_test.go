package cliflags

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
		{"the credential itself wins", map[string]string{"CONSORTIUM_CREDENTIAL": "direct"}, []string{"--credential-file", credFile}, "direct"},
		{"default file missing", nil, nil, ""},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		getenv := func(k string) string { return tc.env[k] }
		cf := AddClientFlags(fs, getenv, filepath.Join(dir, "missing"), "member")
		if err := fs.Parse(tc.args); err != nil {
			t.Fatal(err)
		}
		got, err := cf.Credential(getenv)
		if tc.want == "" {
			if err == nil || !strings.Contains(err.Error(), "CONSORTIUM_CREDENTIAL") {
				t.Errorf("%s: %q, %v; want an error naming CONSORTIUM_CREDENTIAL", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	// Every flag takes its default from its environment variable, and the
	// help names the variable.
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	env := map[string]string{"CONSORTIUM_REGISTRAR": "https://r.example:9898", "CONSORTIUM_CA": "ca.pem", "CONSORTIUM_CREDENTIAL": "c"}
	cf := AddClientFlags(fs, func(k string) string { return env[k] }, "credential", "administrator")
	for name, want := range map[string]string{"registrar": "https://r.example:9898", "ca": "ca.pem", "credential-file": "credential"} {
		if got := fs.Lookup(name).DefValue; got != want {
			t.Errorf("--%s default %q, want %q", name, got, want)
		}
	}
	if u := fs.Lookup("credential-file").Usage; !strings.Contains(u, "administrator credential") || !strings.Contains(u, "CONSORTIUM_CREDENTIAL_FILE") {
		t.Errorf("--credential-file help: %q", u)
	}
	// Client uses them: the CA file of CONSORTIUM_CA is read.
	if _, err := cf.Client(func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "ca.pem") {
		t.Errorf("Client with a missing CA file: %v", err)
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
