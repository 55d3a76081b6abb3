package devnet

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/ethereum/go-ethereum/common"
)

// Roles is how many nodes of each role a member runs.
type Roles = consortiuminit.Roles

// Defaults applied by Config.withDefaults.
const (
	// DefaultDir is the work directory, relative to the working directory.
	DefaultDir = "devnet"
	// DefaultRegistrarListen is the registrar's address: the one the other
	// commands (`consortium member`, `agent`) default to.
	DefaultRegistrarListen = "127.0.0.1:9898"
	// DefaultBasePort is the first port of the nodes (see Config.BasePort).
	// Below 32768, so it never meets a port the kernel hands out on its own.
	DefaultBasePort = 30400
	// DefaultTTL is the registrar's lease: short, so a stopped node leaves
	// the others' peer sets within seconds.
	DefaultTTL = 15 * time.Second
	// portStride separates the P2P, HTTP and Engine API port ranges.
	portStride = 500
)

// Nodes says how many nodes of each role the members run.
type Nodes struct {
	// Default is for every member not in PerMember. The zero value means
	// consortiuminit.DefaultRoles: a bootnode, a validator (the member's
	// signer), a transaction node and a public node.
	Default Roles
	// PerMember overrides Default for the members it names.
	PerMember map[string]Roles
}

// For returns the roles member runs.
func (n Nodes) For(member string) Roles {
	if r, ok := n.PerMember[member]; ok {
		return r
	}
	if n.Default == (Roles{}) {
		return consortiuminit.DefaultRoles
	}
	return n.Default
}

// ParseNodes parses --nodes values. Each value is one or more specs joined
// by ';'. A spec is a comma-separated list of roles, each "role" (one node)
// or "role=N"; roles left out get no node. A spec that starts with
// "member:" is for that member only; one without is for every member.
//
//	validator,tx,public               every member: no bootnode, one of the rest
//	bootnode,validator=1,tx=2,public  every member
//	a:validator,public                member a only
func ParseNodes(values []string) (Nodes, error) {
	var n Nodes
	for _, v := range values {
		for spec := range strings.SplitSeq(v, ";") {
			spec = strings.TrimSpace(spec)
			if spec == "" {
				continue
			}
			member, roles, scoped := strings.Cut(spec, ":")
			if !scoped {
				roles, member = member, ""
			}
			r, err := parseRoles(roles)
			if err != nil {
				return Nodes{}, err
			}
			if member == "" {
				n.Default = r
				continue
			}
			if auth.ValidName(member) != nil {
				return Nodes{}, fmt.Errorf("%w (member %q in %q)", ErrBadNodes, member, spec)
			}
			if n.PerMember == nil {
				n.PerMember = map[string]Roles{}
			}
			n.PerMember[member] = r
		}
	}
	return n, nil
}

func parseRoles(s string) (Roles, error) {
	var r Roles
	seen := map[string]bool{}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		name, count, hasCount := strings.Cut(item, "=")
		k := 1
		if hasCount {
			var err error
			if k, err = strconv.Atoi(count); err != nil || k < 0 || k > consortiuminit.MaxNodesPerRole {
				return r, fmt.Errorf("%w (count %q: want 0-%d)", ErrBadNodes, count, consortiuminit.MaxNodesPerRole)
			}
		}
		if seen[name] {
			return r, fmt.Errorf("%w (role %q given twice)", ErrBadNodes, name)
		}
		seen[name] = true
		switch name {
		case "bootnode":
			r.Bootnodes = k
		case "validator", "signer":
			r.Validators = k
		case "tx":
			r.Tx = k
		case "public":
			r.Public = k
		default:
			return r, fmt.Errorf("%w (unknown role %q)", ErrBadNodes, name)
		}
	}
	return r, nil
}

// Config describes a devnet. Every zero value means the default given on
// its field.
type Config struct {
	// Dir is the work directory: the consortium `init` writes, the nodes'
	// data, their logs and devnet.json. Default DefaultDir. A directory that
	// holds a consortium is reused as it is.
	Dir string
	// Consensus is the chain of a new consortium. Default: the kind of the
	// consortium in Dir when it holds one, else BFT. Naming another kind
	// than Dir's consortium has is refused.
	Consensus Consensus
	// Members of a new consortium. Default DefaultMembers(Consensus). When
	// Dir holds a consortium already, Members must be empty or name its
	// members.
	Members []string
	// Nodes is what each member runs. Default: consortiuminit.DefaultRoles.
	Nodes Nodes
	// Period is the block period of a new consortium, in seconds: the BFT
	// target block time or the Clique period. Default
	// DefaultPeriod(Consensus).
	Period uint64
	// ChainID of a new consortium. Default: consortiuminit's (random).
	ChainID uint64
	// Prefund are accounts funded in a new consortium's genesis.
	Prefund []common.Address
	// Geth is the geth binary: v1.17.x for BFT, v1.13.x for Clique.
	// Default: the cached build of GethVersion(Consensus) under CacheDir,
	// built with GoTool when missing.
	Geth string
	// CacheDir holds built geth binaries. Default $CONSORTIUM_CACHE, else
	// ~/.cache/consortium (as scripts/build-geth.sh).
	CacheDir string
	// GoTool is the go command that builds geth. Default "go".
	GoTool string
	// RegistrarListen is the registrar's address. Default
	// DefaultRegistrarListen; port 0 picks a free port.
	RegistrarListen string
	// BasePort is the first node port: node k (in the order of
	// consortium.json) uses BasePort+k for devp2p and discovery,
	// BasePort+500+k for HTTP JSON-RPC, BasePort+1000+k for the Engine
	// API and, for BFT, BasePort+1500+k for CometBFT's P2P and
	// BasePort+2000+k for a validator's consensus RPC. Default
	// DefaultBasePort.
	BasePort int
	// TTL is the registrar's lease. Default DefaultTTL.
	TTL time.Duration
	// StartTimeout bounds one geth's start, until its RPC answers.
	// Default 90 s (a loaded 2-core machine).
	StartTimeout time.Duration
	// Out receives the operator's lines (registrations, peers, blocks).
	// Default: discarded.
	Out io.Writer
	// CLI is the consortium binary whose `member propose` and `member
	// vote` the validators' operators run when a member joins a BFT
	// devnet. `consortium devnet` sets its own executable. Default: none
	// (a BFT join fails with ErrNoCLI).
	CLI string
	// Logger receives the components' logs (registrar, agents, bootnodes).
	// Default: Dir/logs/devnet.log.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Dir == "" {
		c.Dir = DefaultDir
	}
	if c.CacheDir == "" {
		c.CacheDir = os.Getenv("CONSORTIUM_CACHE")
	}
	if c.CacheDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		c.CacheDir = filepath.Join(home, ".cache", "consortium")
	}
	if c.GoTool == "" {
		c.GoTool = "go"
	}
	if c.RegistrarListen == "" {
		c.RegistrarListen = DefaultRegistrarListen
	}
	if c.BasePort == 0 {
		c.BasePort = DefaultBasePort
	}
	if c.TTL <= 0 {
		c.TTL = DefaultTTL
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 90 * time.Second
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	return c
}

// withConsensus settles the consensus kind (the one of Dir's consortium,
// have, when Dir holds one) and the defaults that follow from it.
func (c Config) withConsensus(have Consensus) (Config, error) {
	switch {
	case have != "" && c.Consensus != "" && c.Consensus != have:
		return c, fmt.Errorf("%w (%s holds a %s consortium, not %s)", ErrDirMismatch, c.Dir, have, c.Consensus)
	case have != "":
		c.Consensus = have
	case c.Consensus == "":
		c.Consensus = BFT
	}
	if c.Period == 0 {
		c.Period = DefaultPeriod(c.Consensus)
	}
	return c, nil
}

// validate checks what can be checked before anything is touched. members
// is the consortium's member list (given or read from Dir). c has been
// through withConsensus.
func (c Config) validate(members []string) error {
	if top := c.BasePort + portRanges(c.Consensus)*portStride; c.BasePort < 1024 || top > 65535 {
		return fmt.Errorf("%w (--base-port %d: want 1024 to %d, the nodes use the %d ports above it)", ErrBadBasePort, c.BasePort, 65535-portRanges(c.Consensus)*portStride, portRanges(c.Consensus)*portStride)
	}
	for m := range c.Nodes.PerMember {
		if !slices.Contains(members, m) {
			return fmt.Errorf("%w (--nodes names %q; the members are %s)", ErrUnknownMember, m, strings.Join(members, ","))
		}
	}
	for _, m := range members {
		if err := checkRoles(c.Consensus, m, c.Nodes.For(m), len(members)); err != nil {
			return err
		}
	}
	return nil
}

// checkRoles refuses a member's roles that cannot take part in the chain.
func checkRoles(mode Consensus, member string, r Roles, members int) error {
	if r.Validators < 1 {
		return fmt.Errorf("%w (member %s)", ErrNoSigner, member)
	}
	if mode == BFT && r.Validators != 1 {
		return fmt.Errorf("%w (member %s asks for %d)", ErrOneValidator, member, r.Validators)
	}
	if members > 1 && r.Public < 1 {
		return fmt.Errorf("%w (member %s)", ErrNoPublic, member)
	}
	return nil
}

// maxRoles is the most nodes of each role any member runs: what init must
// generate for every member, since it gives all members the same roles.
func maxRoles(members []string, n Nodes) Roles {
	var r Roles
	for _, m := range members {
		x := n.For(m)
		r.Bootnodes = max(r.Bootnodes, x.Bootnodes)
		r.Validators = max(r.Validators, x.Validators)
		r.Tx = max(r.Tx, x.Tx)
		r.Public = max(r.Public, x.Public)
	}
	return r
}
