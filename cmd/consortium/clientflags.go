package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/consortium/consortium/internal/registrarclient"
)

// clientFlags are the flags of every command that talks to the registrar.
// Each has an environment variable, read for its default, so a shell or a
// container sets them once.
type clientFlags struct {
	url, credFile, ca *string
	insecure          *bool
}

// flagAdder is the part of *flag.FlagSet that addClientFlags uses.
type flagAdder interface {
	String(string, string, string) *string
	Bool(string, bool, string) *bool
}

// addClientFlags adds --registrar, --credential-file, --ca and
// --allow-insecure. whose names the credential in the help ("member",
// "administrator", "member or administrator"); defCred is
// --credential-file's default.
func addClientFlags(e *env, fs flagAdder, defCred, who string) clientFlags {
	return clientFlags{
		url:      fs.String("registrar", envOr(e, "CONSORTIUM_REGISTRAR", registrarclient.DefaultURL), "registrar URL, or several comma-separated URLs of replicas of one registrar (tried in turn on failure) (env CONSORTIUM_REGISTRAR)"),
		credFile: fs.String("credential-file", envOr(e, "CONSORTIUM_CREDENTIAL_FILE", defCred), "file holding the "+who+" credential (env CONSORTIUM_CREDENTIAL_FILE; CONSORTIUM_CREDENTIAL, if set, is the credential itself and wins)"),
		ca:       fs.String("ca", envOr(e, "CONSORTIUM_CA", ""), "PEM CA file for an https registrar (env CONSORTIUM_CA)"),
		insecure: fs.Bool("allow-insecure", false, "allow sending the credential over plain http to a non-loopback host"),
	}
}

// credential is CONSORTIUM_CREDENTIAL or the content of --credential-file.
func (c clientFlags) credential(e *env) (string, error) {
	if cred := e.getenv("CONSORTIUM_CREDENTIAL"); cred != "" {
		return cred, nil
	}
	b, err := os.ReadFile(*c.credFile)
	if err != nil {
		return "", fmt.Errorf("reading the credential: %v (pass --credential-file, or set CONSORTIUM_CREDENTIAL)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (c clientFlags) client(e *env) (*registrarclient.Client, error) {
	cred, err := c.credential(e)
	if err != nil {
		return nil, err
	}
	return registrarclient.New(registrarclient.Config{URL: *c.url, Credential: cred, CAFile: *c.ca, AllowInsecure: *c.insecure})
}
