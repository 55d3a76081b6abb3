package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/dnstree"
	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registry"
	"github.com/urfave/cli/v3"
)

// dnsFlags serve each member's signed EIP-1459 node tree over DNS, so a
// client with no agent (any Ethereum client's --discovery.dns) finds its
// member's nodes.
type dnsFlags struct {
	listen, domain string
	allow          string
	key            string
	allowAll       bool
}

func dnsFlagList(e *env) []cli.Flag {
	return []cli.Flag{
		cliflags.String("dns-listen", "", "serve each member's signed EIP-1459 node tree over DNS (UDP and TCP) on this address, e.g. :53 (default: off)"),
		cliflags.String("dns-domain", "consortium", "the trees' domain: member acme's zone is acme.nodes.<domain>"),
		cliflags.String("dns-allow", "", "who may read a member's zone (it holds the member's private endpoints): member=CIDR pairs, comma-separated, e.g. acme=10.1.0.0/16,bank=10.2.0.0/16 (default: loopback only)"),
		cliflags.String("dns-key", "", "the trees' signing key file (hex, mode 0600), e.g. registrar/dnstree.key from 'consortium init'; give every replica the same file, or each signs with its own key and clients' enrtree:// URLs match only one (default: <data>/dnstree.key, created on first use)", e.source("CONSORTIUM_DNS_KEY")),
		cliflags.Bool("dns-allow-all", false, "let any address read every zone (test networks only: zones hold private endpoints)"),
	}
}

func readDNSFlags(cmd *cli.Command) dnsFlags {
	return dnsFlags{listen: cmd.String("dns-listen"), domain: cmd.String("dns-domain"), allow: cmd.String("dns-allow"), key: cmd.String("dns-key"), allowAll: cmd.Bool("dns-allow-all")}
}

// parseDNSAllow reads --dns-allow.
func parseDNSAllow(s string) (map[string][]netip.Prefix, error) {
	nets := map[string][]netip.Prefix{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		m, cidr, ok := strings.Cut(item, "=")
		p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
		if !ok || m == "" || err != nil {
			return nil, fmt.Errorf("%w: --dns-allow %q: want member=CIDR", errUsage, item)
		}
		nets[m] = append(nets[m], p.Masked())
	}
	return nets, nil
}

// dnsTrees is dnstree.Trees as httpapi's TreeSource.
type dnsTrees struct{ t *dnstree.Trees }

func (d dnsTrees) Tree(member string) (any, error) {
	v, err := d.t.Tree(member)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// startDNS starts the trees (following reg) and the DNS server; nil
// without --dns-listen. Both stop with ctx.
func startDNS(ctx context.Context, log *slog.Logger, reg *registry.Registry, dataDir string, f dnsFlags) (httpapi.TreeSource, error) {
	if f.listen == "" {
		return nil, nil
	}
	access := dnstree.AccessFunc(dnstree.LoopbackOnly)
	switch {
	case f.allowAll:
		access = dnstree.AllowAll
		log.Warn("every address may read every member's DNS zone (--dns-allow-all): zones hold private endpoints")
	case f.allow != "":
		nets, err := parseDNSAllow(f.allow)
		if err != nil {
			return nil, err
		}
		access = dnstree.AllowNets(nets)
	}
	key, err := treeKey(log, dataDir, f.key)
	if err != nil {
		return nil, err
	}
	trees, err := dnstree.New(dnstree.NewRegistrySource(reg), dnstree.Config{Domain: f.domain, Key: key, Logger: log})
	if err != nil {
		return nil, err
	}
	pc, l, err := dnstree.Listen(f.listen)
	if err != nil {
		return nil, fmt.Errorf("cannot serve DNS on %s: %v", f.listen, err)
	}
	srv := dnstree.NewServer(trees, dnstree.ServerConfig{Access: access, Logger: log})
	go trees.Run(ctx)
	go srv.Serve(ctx, pc, l)
	log.Info("serving node trees over DNS", "listen", f.listen, "example", trees.URL("<member>"))
	return dnsTrees{trees}, nil
}

// treeKey is the key every tree is signed with: the --dns-key file, which
// must exist (replicas share it; one replica creating its own would split
// clients), or else <data>/dnstree.key, created on first use.
func treeKey(log *slog.Logger, dataDir, file string) (*ecdsa.PrivateKey, error) {
	if file != "" {
		key, err := dnstree.LoadKey(file)
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: --dns-key %s does not exist: 'consortium init' writes one (registrar/dnstree.key); give every replica that same file", errUsage, file)
		}
		if err != nil {
			return nil, fmt.Errorf("the node trees' key: %w", err)
		}
		return key, nil
	}
	key, created, err := dnstree.LoadOrCreateKey(dataDir)
	if err != nil {
		return nil, fmt.Errorf("the node trees' key: %w", err)
	}
	if created {
		log.Info("created the node trees' signing key; replicas need this same file (--dns-key)", "file", filepath.Join(dataDir, dnstree.KeyFile))
	}
	return key, nil
}
