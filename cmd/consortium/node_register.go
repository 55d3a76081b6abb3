package main

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/noderecord"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/urfave/cli/v3"
)

// nodeRegisterCommand is `consortium node register`: it keeps the record
// of a node that runs no agent registered. A member may run a client we
// ship no agent for, or plain geth that finds its peers in the member's
// DNS tree (--discovery.dns, issue 23); the registrar only lists, and the
// other members' agents only accept, nodes with a signed, leased record.
// This command signs that record with the node's own key and renews its
// lease until it is stopped: the agent's registration without its peer
// management. It runs wherever the node key and the member credential
// are, not necessarily beside the client.
func nodeRegisterCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:  "register",
		Usage: "keep the signed record of a node without an agent registered (renews its lease until stopped)",
		Flags: flags(clientFlags(e, "credential", "member"), []cli.Flag{
			cliflags.String("nodekey", "", "the node's key file (geth's --nodekey, hex); its record is signed with it (required)"),
			cliflags.String("ip", "", "the IP the node listens on, as the member's other nodes reach it (required)"),
			cliflags.Int("port", 30303, "the node's TCP and UDP p2p port"),
			cliflags.String("role", "tx", "the node's role: tx or validator (a public node needs the agent: it has a second, public record)"),
		}, logFlags()),
		Action: func(ctx context.Context, cmd *cli.Command) error { return runNodeRegister(ctx, e, cmd) },
	}
}

// staticRecord is the record node register signs: the node key's, at ip
// and port, with a time-based sequence number (it grows across restarts,
// so the registrar takes a new record of the same node over the old one).
func staticRecord(keyFile, ipText string, port int, role string, now time.Time) (rec string, id enode.ID, err error) {
	switch {
	case keyFile == "":
		return "", id, fmt.Errorf("%w: --nodekey is required: consortium node register --nodekey FILE --ip IP [--port N] [--role tx|validator]", errUsage)
	case ipText == "":
		return "", id, fmt.Errorf("%w: --ip is required: the address the member's other nodes reach this node at", errUsage)
	case port <= 0 || port > 65535:
		return "", id, fmt.Errorf("%w: --port %d is not a port", errUsage, port)
	}
	r, err := noderecord.ParseRole(role)
	if err != nil {
		return "", id, fmt.Errorf("%w: --role: %v", errUsage, err)
	}
	if r == noderecord.RolePublic || r == noderecord.RoleBootnode {
		return "", id, fmt.Errorf("%w: --role %s: node register keeps tx and validator nodes; a public node has a public record too (run the agent), a bootnode registers itself", errUsage, role)
	}
	ip := net.ParseIP(ipText)
	if ip == nil {
		return "", id, fmt.Errorf("%w: --ip %q is not an IP address", errUsage, ipText)
	}
	key, err := crypto.LoadECDSA(keyFile)
	if err != nil {
		return "", id, fmt.Errorf("node key %s: %v", keyFile, err)
	}
	rec, err = agent.SignRecord(key, uint64(now.UnixMilli()), agent.Endpoint{IP: ip, TCP: port, UDP: port})
	if err != nil {
		return "", id, err
	}
	return rec, enode.PubkeyToIDV4(&key.PublicKey), nil
}

func runNodeRegister(ctx context.Context, e *env, cmd *cli.Command) error {
	if err := noArgs(cmd); err != nil {
		return err
	}
	log, err := newLogger(e.stderr, cmd.String("log-format"), cmd.String("log-level"))
	if err != nil {
		return err
	}
	rec, id, err := staticRecord(cmd.String("nodekey"), cmd.String("ip"), cmd.Int("port"), cmd.String("role"), time.Now())
	if err != nil {
		return err
	}
	rc, err := registrarClient(e, cmd)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "keeping node %s (%s) registered as %s until stopped\n", id, cmd.String("ip"), cmd.String("role"))
	agent.Announce(ctx, rc, cmd.String("role"), func() string { return rec }, log)
	return nil
}
