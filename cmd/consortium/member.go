package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/consortium/consortium/internal/registrarclient"
)

func runMember(ctx context.Context, e *env, args []string) error {
	const use = "member add NAME | member list | member revoke NAME"
	if len(args) == 0 {
		return fmt.Errorf("%w: consortium %s", errUsage, use)
	}
	sub := args[0]
	fs := newFlags(e, "member "+sub)
	url := fs.String("registrar", envOr(e, "CONSORTIUM_REGISTRAR", "http://127.0.0.1:9898"), "registrar URL")
	credFile := fs.String("credential-file", envOr(e, "CONSORTIUM_CREDENTIAL_FILE", "data/"+AdminCredentialFile), "file holding the administrator credential")
	ca := fs.String("ca", "", "PEM CA file for an https registrar")
	insecure := fs.Bool("allow-insecure", false, "allow sending the credential over plain http to a non-loopback host")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	cred := e.getenv("CONSORTIUM_CREDENTIAL")
	if cred == "" {
		b, err := os.ReadFile(*credFile)
		if err != nil {
			return fmt.Errorf("reading the administrator credential: %v (pass --credential-file, or set CONSORTIUM_CREDENTIAL)", err)
		}
		cred = strings.TrimSpace(string(b))
	}
	c, err := registrarclient.New(registrarclient.Config{URL: *url, Credential: cred, CAFile: *ca, AllowInsecure: *insecure})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	switch sub {
	case "add":
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: consortium member add NAME", errUsage)
		}
		m, err := c.AddMember(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stderr, "member %s created; its credential is shown once, below. Give it to the member over a secure channel.\n", m.Name)
		fmt.Fprintln(e.stdout, m.Credential)
	case "list":
		if fs.NArg() != 0 {
			return fmt.Errorf("%w: consortium member list", errUsage)
		}
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
		if fs.NArg() != 1 {
			return fmt.Errorf("%w: consortium member revoke NAME", errUsage)
		}
		m, err := c.RevokeMember(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "member %s revoked; its nodes left every peer set\n", m.Name)
	default:
		return fmt.Errorf("%w: consortium %s", errUsage, use)
	}
	return nil
}
