package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"
)

const memberUse = "consortium member add NAME | member list | member revoke NAME  [flags]"

func runMember(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", errUsage, memberUse)
	}
	sub := args[0]
	if isHelp(sub) {
		return subHelp(e, memberUse, "consortium member add -h")
	}
	fs := newFlags(e, "member "+sub)
	cf := addClientFlags(e, fs, "data/"+AdminCredentialFile, "administrator")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	var want int
	switch sub {
	case "add", "revoke":
		want = 1
	case "list":
	default:
		return fmt.Errorf("%w: unknown subcommand %q: %s", errUsage, sub, memberUse)
	}
	if fs.NArg() != want {
		return fmt.Errorf("%w: %s", errUsage, memberUse)
	}
	c, err := cf.client(e)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch sub {
	case "add":
		m, err := c.AddMember(ctx, fs.Arg(0))
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
			if m.Revoked {
				state = "revoked"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", m.Name, state, m.Nodes, m.LiveNodes, m.Created.Format(time.RFC3339))
		}
		tw.Flush()
	case "revoke":
		m, err := c.RevokeMember(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "member %s revoked; its nodes left every peer set\n", m.Name)
	}
	return nil
}
