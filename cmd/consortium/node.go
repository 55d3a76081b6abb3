package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/registry"
	"github.com/urfave/cli/v3"
)

// shortID is how many hex digits of a node ID `node list` shows; `node
// remove` takes such a prefix when it names one node.
const shortID = 16

// nodeCommand is `consortium node`: it lists node records and removes
// them: a member's credential sees and removes its own nodes, the
// administrator's every node. It is the way out for the record of a node
// that stopped for good.
func nodeCommand(e *env) *cli.Command {
	client := func() []cli.Flag { return clientFlags(e, "data/"+AdminCredentialFile, "member or administrator") }
	return &cli.Command{
		Name:   "node",
		Usage:  "list node records, remove one (a member its own, the administrator any), or keep an agentless node's record registered",
		Action: group(e),
		Commands: []*cli.Command{
			{
				Name: "list", Usage: "list the node records this credential sees",
				Flags: flags(client(), []cli.Flag{
					cliflags.Bool("json", false, "print the registrar's node views as JSON, one a line"),
					cliflags.Bool("lapsed", false, "only nodes whose lease ran out (candidates for node remove)"),
					cliflags.Bool("wide", false, "show whole node IDs"),
					cliflags.Bool("all", false, "also the records members removed (kept to bind their IDs; in no peer set)"),
					cliflags.String("member", "", "only this member's nodes"),
				}),
				Action: func(ctx context.Context, cmd *cli.Command) error { return runNode(ctx, e, "list", cmd) },
			},
			{
				Name: "remove", Usage: "remove node records (IDs, or prefixes of at least 8 hex digits, from node list)", ArgsUsage: "ID...",
				Flags:  client(),
				Action: func(ctx context.Context, cmd *cli.Command) error { return runNode(ctx, e, "remove", cmd) },
			},
			nodeRegisterCommand(e),
		},
	}
}

func runNode(ctx context.Context, e *env, sub string, cmd *cli.Command) error {
	if sub == "list" && cmd.NArg() != 0 {
		return fmt.Errorf("%w: unexpected argument %q: consortium node list [flags]", errUsage, cmd.Args().First())
	}
	if sub == "remove" && cmd.NArg() == 0 {
		return fmt.Errorf("%w: consortium node remove ID... (IDs, or prefixes of at least 8 hex digits, from node list)", errUsage)
	}
	c, err := registrarClient(e, cmd)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	nodes, err := c.Nodes(ctx)
	if err != nil {
		return nodeError(err, "")
	}
	if sub == "list" {
		now, member := time.Now(), cmd.String("member")
		var shown []registry.NodeView
		for _, n := range nodes {
			st := nodeState(n, now)
			if (member == "" || n.Member == member) && (!cmd.Bool("lapsed") || st == "lapsed") && (cmd.Bool("all") || st != "removed") {
				shown = append(shown, n)
			}
		}
		if cmd.Bool("json") {
			enc := json.NewEncoder(e.stdout)
			for _, n := range shown {
				if err := enc.Encode(n); err != nil {
					return err
				}
			}
			return nil
		}
		printNodes(e, shown, now, cmd.Bool("wide"))
		return nil
	}
	ids := make([]string, cmd.NArg())
	for i, arg := range cmd.Args().Slice() {
		if ids[i], err = resolveNodeID(nodes, arg); err != nil {
			return err
		}
	}
	for _, id := range ids {
		if err := c.Remove(ctx, id); err != nil {
			return nodeError(err, id)
		}
		fmt.Fprintf(e.stdout, "node %s removed\n", id)
	}
	return nil
}

// nodeState is "live", "lapsed" (its lease ran out), "removed" (by its
// member: the registrar keeps the record, without a lease, so that only a
// newer record can bring the ID back) or "revoked" (its lease runs but its
// member is revoked, which the administrator alone sees).
func nodeState(n registry.NodeView, now time.Time) string {
	switch {
	case n.Live:
		return "live"
	case n.Expires.IsZero():
		return "removed"
	case !n.Expires.After(now):
		return "lapsed"
	}
	return "revoked"
}

func printNodes(e *env, nodes []registry.NodeView, now time.Time, wide bool) {
	tw := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tMEMBER\tROLE\tSTATE\tENDPOINT\tHEAD\tPEERS\tLEASE")
	for _, n := range nodes {
		id := n.ID
		if !wide && len(id) > shortID {
			id = id[:shortID]
		}
		ep := enodeHost(n.Enode)
		if pub := enodeHost(n.PublicEnode); pub != "" && pub != ep {
			if ep == "" {
				ep = pub
			} else {
				ep += " public " + pub
			}
		}
		head, peers := "-", "-"
		if n.Status != nil {
			head, peers = fmt.Sprint(n.Status.Head), fmt.Sprint(n.Status.Peers)
		}
		lease := "ends in " + n.Expires.Sub(now).Round(time.Second).String()
		if n.Expires.IsZero() {
			lease = "-"
		} else if !n.Expires.After(now) {
			lease = "ended " + now.Sub(n.Expires).Round(time.Second).String() + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, n.Member, n.Role, nodeState(n, now), ep, head, peers, lease)
	}
	tw.Flush()
}

// enodeHost is an enode URL's host:port, or "".
func enodeHost(enode string) string {
	if enode == "" {
		return ""
	}
	u, err := url.Parse(enode)
	if err != nil {
		return ""
	}
	return u.Host
}

// resolveNodeID turns an argument of node remove into a whole node ID: a
// whole ID is taken as it is (the registrar says whether it may be
// removed); a shorter hex prefix must name exactly one node of the list.
func resolveNodeID(nodes []registry.NodeView, arg string) (string, error) {
	arg = strings.ToLower(strings.TrimSpace(arg))
	if len(arg) == 64 {
		return arg, nil
	}
	if len(arg) < 8 || strings.Trim(arg, "0123456789abcdef") != "" {
		return "", fmt.Errorf("%w: %q is not a node ID: give the whole ID or at least its first 8 hex digits (consortium node list)", errUsage, arg)
	}
	var found []string
	for _, n := range nodes {
		if strings.HasPrefix(n.ID, arg) {
			found = append(found, n.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", fmt.Errorf("no node listed for this credential has an ID starting with %s", arg)
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("%d nodes have an ID starting with %s: give more digits", len(found), arg)
}

// nodeError says what an operator can do about a refusal.
func nodeError(err error, id string) error {
	var ae *registrarclient.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch ae.Status {
	case http.StatusUnauthorized:
		return fmt.Errorf("the registrar refused the credential (401): check --credential-file or CONSORTIUM_CREDENTIAL: %s", ae.Message)
	case http.StatusNotFound:
		if id != "" {
			return fmt.Errorf("node %s: not found: it is not registered, or it is another member's node (a member removes only its own nodes; the administrator any)", id)
		}
	case http.StatusForbidden:
		return fmt.Errorf("not allowed for this credential (403): %s", ae.Message)
	}
	return err
}
