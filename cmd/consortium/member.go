package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"
)

// memberCommand is `consortium member`: the registrar's member
// administration (add, list, revoke, rotate-credential) and the vote on the validator set
// (propose, vote, proposals, new-credential; governance.go).
func memberCommand(e *env) *cli.Command {
	admin := func(name, args, usage string) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, ArgsUsage: args,
			Flags: clientFlags(e, "data/"+AdminCredentialFile, "administrator"),
			Action: func(ctx context.Context, cmd *cli.Command) error {
				return runMember(ctx, e, name, cmd)
			},
		}
	}
	return &cli.Command{
		Name:   "member",
		Usage:  "add, list, revoke members, rotate a credential (registrar); propose, vote, proposals (validator set, on chain)",
		Action: group(e),
		Commands: append([]*cli.Command{
			admin("add", "NAME", "add a member: prints its credential, once (administrator)"),
			admin("list", "", "list the members (administrator)"),
			admin("revoke", "NAME", "revoke a member: its nodes leave every peer set (administrator)"),
			rotateCredentialCommand(e),
		}, governanceCommands(e)...),
	}
}

func runMember(ctx context.Context, e *env, sub string, cmd *cli.Command) error {
	want := 1
	if sub == "list" {
		want = 0
	}
	if cmd.NArg() != want {
		return fmt.Errorf("%w: consortium member %s %s[flags]", errUsage, sub, map[int]string{0: "", 1: "NAME "}[want])
	}
	c, err := registrarClient(e, cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch sub {
	case "add":
		m, err := c.AddMember(ctx, cmd.Args().First())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "member %s created; its credential is shown once, below. Give it to the member over a secure channel.\n", m.Name)
		fmt.Fprintln(e.stdout, m.Credential)
	case "list":
		ms, err := c.Members(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tNODES\tLIVE\tCREATED")
		for _, m := range ms {
			state := "active"
			switch {
			case m.Revoked:
				state = "revoked"
			case m.PreviousCredentialUntil != nil:
				// A rotation's grace: the replaced credential still works.
				state = "rotating"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", m.Name, state, m.Nodes, m.LiveNodes, m.Created.Format(time.RFC3339))
		}
		tw.Flush()
	case "revoke":
		m, err := c.RevokeMember(ctx, cmd.Args().First())
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "member %s revoked; its nodes left every peer set\n", m.Name)
	}
	return nil
}
