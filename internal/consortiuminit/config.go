package consortiuminit

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/dnstree"
	"github.com/ethereum/go-ethereum/common"
)

// Consensus is how the chain orders its blocks.
type Consensus string

// The consensus kinds. The values are consortium.json's and the CLI's names.
const (
	// ConsensusBFT is the reference chain: CometBFT orders blocks and drives
	// each member's geth v1.17 over the Engine API, one validator of equal
	// power per member, so a block is final when it appears.
	ConsensusBFT Consensus = "bft"
	// ConsensusClique is the legacy chain: geth v1.13.15 seals Clique
	// blocks, one signer per validator node, with no finality.
	ConsensusClique Consensus = "clique"
)

// ParseConsensus reads a consensus name as the CLI and consortium.json give it.
func ParseConsensus(s string) (Consensus, error) {
	switch c := Consensus(s); c {
	case ConsensusBFT, ConsensusClique:
		return c, nil
	}
	return "", fmt.Errorf("%w (got %q)", ErrBadConsensus, s)
}

// Defaults applied by Config.withDefaults.
const (
	// DefaultConsensus is what a consortium runs unless asked otherwise.
	DefaultConsensus = ConsensusBFT
	// DefaultOut is the output directory, relative to the working directory.
	DefaultOut = "consortium"
	// DefaultDNSDomain is the node trees' domain, as the registrar's
	// --dns-domain defaults to.
	DefaultDNSDomain = "consortium"
	// DefaultPeriod is the Clique block period in seconds (Clique only).
	DefaultPeriod = 2
	// DefaultGasLimit is the genesis gas limit (30M, as in the reference genesis).
	DefaultGasLimit = 30_000_000
	// Epoch is the Clique epoch: the checkpoint interval at which pending
	// votes are reset. Fixed, as in the reference genesis.
	Epoch = 30000
	// MaxNodesPerRole bounds each role's count per member, to catch typos
	// (a "100" meant as "10") before they make a hundred keys.
	MaxNodesPerRole = 16

	// A default chain id is drawn from [chainIDMin, chainIDMax): above every
	// id a public network or a local tool (1337, 31337, ...) commonly uses,
	// and below 2^31 so tools that keep chain ids in an int32 or a JSON
	// number cope.
	chainIDMin = 100_000_000
	chainIDMax = 1<<31 - 1
)

// DefaultPrefundWei is the balance given to every signer (Clique), every
// member's fee recipient (BFT) and every Config.Prefund address: 10^27 wei (10^9 ether), as in the reference genesis.
func DefaultPrefundWei() *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(27), nil) }

// Roles is how many nodes of each role every member gets. The zero value
// means DefaultRoles; any other value is taken as given, so Roles{Validators: 1}
// means one validator and nothing else.
type Roles struct {
	Bootnodes  int // discovery bootnodes inside the member
	Validators int // Clique signers, or each member's CometBFT validator (BFT: exactly one)
	Tx         int // transaction nodes serving the member's applications
	Public     int // nodes that peer with other members
}

// DefaultRoles is one node of each role per member.
var DefaultRoles = Roles{Bootnodes: 1, Validators: 1, Tx: 1, Public: 1}

// Config describes the consortium to create. Every zero value means the
// default given on its field.
type Config struct {
	// Consensus is the chain's consensus. Default DefaultConsensus (BFT).
	Consensus Consensus
	// Members are the member names, each valid for auth.ValidName and
	// listed once. Required. Their order is kept in the manifest.
	Members []string
	// Out is the directory to write. Default DefaultOut. It may exist if it
	// is empty; see Force.
	Out string
	// NodesPerMember is the node count per role for every member. Default
	// DefaultRoles.
	NodesPerMember Roles
	// ChainID of the new chain. Default: a random id in [10^8, 2^31-1), so
	// two consortia made with defaults never share an id and a transaction
	// signed for one cannot be replayed on the other.
	ChainID uint64
	// Period is the Clique block period in seconds. Default DefaultPeriod.
	// (Clique's "0 = seal only when there are transactions" cannot be asked
	// for: zero means the default.) Ignored by BFT, whose block time is the
	// consensus process's setting, not the genesis's.
	Period uint64
	// GenesisTime is the CometBFT genesis time (BFT only): no node starts
	// consensus before it. Default: the time Run is called.
	GenesisTime time.Time
	// GasLimit of the genesis block. Default DefaultGasLimit.
	GasLimit uint64
	// Prefund are extra accounts funded in the genesis, besides the signers
	// (Clique) or the members' fee recipients (BFT), which are always funded.
	Prefund []common.Address
	// PrefundWei is the balance of each funded account. Default
	// DefaultPrefundWei().
	PrefundWei *big.Int
	// DNSDomain is the domain under which the registrar serves each
	// member's node tree (its --dns-domain): member M's zone is
	// M.nodes.<DNSDomain>, and geth finds M's nodes with
	// --discovery.dns enrtree://<tree key>@M.nodes.<DNSDomain>. Default
	// DefaultDNSDomain, the registrar's default.
	DNSDomain string
	// Force lets Run write into a non-empty Out. What init writes there
	// (genesis.json, cometbft-genesis.json, consortium.json, members/,
	// registrar/) is replaced,
	// including members left over from an earlier run; nothing else in Out is
	// touched, so a mistyped Out never loses unrelated files. Default false:
	// a non-empty Out is refused with ErrExists.
	Force bool
	// Logger receives one line per file written, with paths only: never a
	// secret. Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Consensus == "" {
		c.Consensus = DefaultConsensus
	}
	if c.Out == "" {
		c.Out = DefaultOut
	}
	if c.NodesPerMember == (Roles{}) {
		c.NodesPerMember = DefaultRoles
	}
	if c.ChainID == 0 {
		n, err := rand.Int(rand.Reader, big.NewInt(chainIDMax-chainIDMin))
		if err != nil {
			return c, fmt.Errorf("drawing a chain id: %w", err)
		}
		c.ChainID = chainIDMin + n.Uint64()
	}
	switch c.Consensus {
	case ConsensusClique:
		if c.Period == 0 {
			c.Period = DefaultPeriod
		}
	case ConsensusBFT:
		c.Period = 0
		if c.GenesisTime.IsZero() {
			c.GenesisTime = time.Now()
		}
		// As CometBFT writes times (cmttime.Canonical): UTC, no monotonic reading.
		c.GenesisTime = c.GenesisTime.UTC().Round(0)
	}
	if c.DNSDomain == "" {
		c.DNSDomain = DefaultDNSDomain
	}
	c.DNSDomain = strings.Trim(strings.ToLower(c.DNSDomain), ".")
	if c.GasLimit == 0 {
		c.GasLimit = DefaultGasLimit
	}
	if c.PrefundWei == nil {
		c.PrefundWei = DefaultPrefundWei()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// validate checks a config that has been through withDefaults. It is pure,
// so every refusal happens before anything is written.
func (c Config) validate() error {
	if _, err := ParseConsensus(string(c.Consensus)); err != nil {
		return err
	}
	if len(c.Members) == 0 {
		return ErrNoMembers
	}
	seen := make(map[string]bool, len(c.Members))
	for _, m := range c.Members {
		if auth.ValidName(m) != nil {
			return fmt.Errorf("%w (got %q)", ErrBadMember, m)
		}
		if seen[m] {
			return fmt.Errorf("%w (%q)", ErrDuplicateMember, m)
		}
		seen[m] = true
	}
	r := c.NodesPerMember
	for _, n := range []int{r.Bootnodes, r.Validators, r.Tx, r.Public} {
		if n < 0 || n > MaxNodesPerRole {
			return fmt.Errorf("%w (got %+v)", ErrBadRoles, r)
		}
	}
	// Every member gets the same roles, so no validator per member means
	// no signer at all, and a Clique chain with no signer never makes a block.
	if r.Validators == 0 {
		return fmt.Errorf("%w (got %+v)", ErrBadRoles, r)
	}
	// A member's vote is one CometBFT key. Two nodes holding it would sign
	// twice (slashable equivocation); two keys would give one member two votes.
	if c.Consensus == ConsensusBFT && r.Validators != 1 {
		return fmt.Errorf("%w (got %d)", ErrOneValidator, r.Validators)
	}
	if err := dnstree.CheckDomain(c.DNSDomain); err != nil {
		return fmt.Errorf("%w (the DNS domain)", err)
	}
	if c.PrefundWei.Sign() <= 0 {
		return fmt.Errorf("%w (amount %s)", ErrBadPrefund, c.PrefundWei)
	}
	for _, a := range c.Prefund {
		if a == (common.Address{}) {
			return fmt.Errorf("%w (the zero address)", ErrBadPrefund)
		}
	}
	return nil
}
