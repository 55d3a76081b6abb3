package main

import (
	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/urfave/cli/v3"
)

// clientFlags are --registrar, --credential-file, --ca and
// --allow-insecure, the flags of every command that talks to the
// registrar (internal/cliflags, shared with the agent-only build). who
// names the credential in the help ("member", "administrator", "member or
// administrator"); defCred is --credential-file's default.
func clientFlags(e *env, defCred, who string) []cli.Flag {
	return cliflags.ClientFlags(e.getenv, defCred, who)
}

// registrarClient is the client the command's client flags describe; it
// reads the credential.
func registrarClient(e *env, cmd *cli.Command) (*registrarclient.Client, error) {
	return cliflags.ReadClient(cmd).Client(e.getenv, nil)
}
