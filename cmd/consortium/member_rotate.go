package main

import (
	"context"
	"fmt"
	"time"

	"github.com/consortium/consortium/internal/atomicfile"
	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/registry"
	"github.com/urfave/cli/v3"
)

// rotateCredentialCommand is `consortium member rotate-credential [NAME]`:
// a member replaces its registrar credential (or the administrator a
// member's, outside a chain-governed consortium); the replaced one stays
// valid for --grace, so agents move over without downtime.
func rotateCredentialCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "rotate-credential",
		Usage:     "replace a member's registrar credential; the old one stays valid for --grace (the member itself, or the administrator)",
		ArgsUsage: "[NAME]",
		Flags: append(clientFlags(e, "", "member (or administrator)"),
			cliflags.Duration("grace", registry.DefaultCredentialGrace, "how long the replaced credential stays valid (0s: refused at once, for one that leaked; at most 168h)"),
			cliflags.String("out", "", "write the new credential to FILE (mode 0600, replaced atomically; may be the --credential-file itself) instead of printing it")),
		Action: func(ctx context.Context, cmd *cli.Command) error { return runRotateCredential(ctx, e, cmd) },
	}
}

func runRotateCredential(ctx context.Context, e *env, cmd *cli.Command) error {
	if cmd.NArg() > 1 {
		return fmt.Errorf("%w: consortium member rotate-credential [NAME] [flags]", errUsage)
	}
	flags := cliflags.ReadClient(cmd)
	cred, err := flags.Credential(e.getenv)
	if err != nil {
		return err
	}
	name := cmd.Args().First()
	if name == "" {
		c, err := auth.Parse(cred)
		if err != nil || c.Principal == auth.Admin {
			return fmt.Errorf("%w: name the member whose credential to rotate (the credential given is not a member's)", errUsage)
		}
		name = c.Principal
	}
	c, err := flags.Client(e.getenv, nil)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rot, err := c.RotateCredential(ctx, name, cmd.Duration("grace"))
	if err != nil {
		return err
	}
	until := "is refused from now on"
	if rot.PreviousValidUntil != nil {
		until = "is accepted until " + rot.PreviousValidUntil.Format(time.RFC3339) + ": move every agent and tool to the new one before then"
	}
	if out := cmd.String("out"); out != "" {
		if err := atomicfile.Write(out, []byte(rot.Credential+"\n"), 0o600); err != nil {
			return fmt.Errorf("the registrar rotated %s's credential but writing it failed: %w; the new credential: %s", name, err, rot.Credential)
		}
		fmt.Fprintf(e.stdout, "member %s: new credential written to %s; the previous one %s\n", name, out, until)
		return nil
	}
	fmt.Fprintf(e.stderr, "member %s: new credential below, shown once; the previous one %s\n", name, until)
	fmt.Fprintln(e.stdout, rot.Credential)
	return nil
}
