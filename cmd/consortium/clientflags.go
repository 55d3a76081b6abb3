package main

import (
	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/registrarclient"
)

// clientFlags are the flags of every command that talks to the registrar
// (internal/cliflags, shared with the agent-only build).
type clientFlags struct{ cliflags.ClientFlags }

// flagAdder is the part of *flag.FlagSet that addClientFlags uses.
type flagAdder = cliflags.FlagAdder

// addClientFlags adds --registrar, --credential-file, --ca and
// --allow-insecure. who names the credential in the help ("member",
// "administrator", "member or administrator"); defCred is
// --credential-file's default.
func addClientFlags(e *env, fs flagAdder, defCred, who string) clientFlags {
	return clientFlags{cliflags.AddClientFlags(fs, e.getenv, defCred, who)}
}

func (c clientFlags) client(e *env) (*registrarclient.Client, error) {
	return c.Client(e.getenv)
}
