// Package cliflags holds what every command line of this repository
// shares: the usage error, the logger flags' parsing and the flags of a
// registrar client. The consortium binary (cmd/consortium) and the
// agent-only build (internal/agent/agentonly) both use it, so a flag is
// defined, documented and read from its environment variable in one place.
package cliflags

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/consortium/consortium/internal/registrarclient"
)

// ErrUsage marks a usage error: the command line is wrong, and main
// prints the message with the usage and exits 2.
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

// FlagAdder is the part of *flag.FlagSet that AddClientFlags uses.
type FlagAdder interface {
	String(name, value, usage string) *string
	Bool(name string, value bool, usage string) *bool
}

// ClientFlags are the flags of every command that talks to the registrar.
// Each has an environment variable, read for its default, so a shell or a
// container sets them once.
type ClientFlags struct {
	url, credFile, ca *string
	insecure          *bool
}

// AddClientFlags adds --registrar, --credential-file, --ca and
// --allow-insecure. who names the credential in the help ("member",
// "administrator", "member or administrator"); defCred is
// --credential-file's default.
func AddClientFlags(fs FlagAdder, getenv Getenv, defCred, who string) ClientFlags {
	return ClientFlags{
		url:      fs.String("registrar", EnvOr(getenv, "CONSORTIUM_REGISTRAR", registrarclient.DefaultURL), "registrar URL, or several comma-separated URLs of replicas of one registrar (tried in turn on failure) (env CONSORTIUM_REGISTRAR)"),
		credFile: fs.String("credential-file", EnvOr(getenv, "CONSORTIUM_CREDENTIAL_FILE", defCred), "file holding the "+who+" credential (env CONSORTIUM_CREDENTIAL_FILE; CONSORTIUM_CREDENTIAL, if set, is the credential itself and wins)"),
		ca:       fs.String("ca", EnvOr(getenv, "CONSORTIUM_CA", ""), "PEM CA file for an https registrar (env CONSORTIUM_CA)"),
		insecure: fs.Bool("allow-insecure", false, "allow sending the credential over plain http to a non-loopback host"),
	}
}

// Credential is CONSORTIUM_CREDENTIAL or the content of --credential-file.
func (c ClientFlags) Credential(getenv Getenv) (string, error) {
	if cred := getenv("CONSORTIUM_CREDENTIAL"); cred != "" {
		return cred, nil
	}
	b, err := os.ReadFile(*c.credFile)
	if err != nil {
		return "", fmt.Errorf("reading the credential: %v (pass --credential-file, or set CONSORTIUM_CREDENTIAL)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Client is the registrar client the flags describe.
func (c ClientFlags) Client(getenv Getenv) (*registrarclient.Client, error) {
	cred, err := c.Credential(getenv)
	if err != nil {
		return nil, err
	}
	return registrarclient.New(registrarclient.Config{URL: *c.url, Credential: cred, CAFile: *c.ca, AllowInsecure: *c.insecure})
}
