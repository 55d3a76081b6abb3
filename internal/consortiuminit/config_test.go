package consortiuminit

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		err  error
	}{
		{"defaults", Config{Members: []string{"acme"}}, nil},
		{"three members", Config{Members: []string{"acme", "globex", "initech-2"}}, nil},
		{"validators only", Config{Members: []string{"acme"}, NodesPerMember: Roles{Validators: 1}}, nil},
		{"max per role", Config{Members: []string{"acme"}, NodesPerMember: Roles{Bootnodes: MaxNodesPerRole, Validators: 1}}, nil},
		{"prefund", Config{Members: []string{"acme"}, Prefund: []common.Address{factsA}, PrefundWei: big.NewInt(1)}, nil},
		{"bft", Config{Consensus: ConsensusBFT, Members: []string{"acme"}}, nil},
		{"clique", Config{Consensus: ConsensusClique, Members: []string{"acme"}}, nil},
		{"clique, two signers each", Config{Consensus: ConsensusClique, Members: []string{"acme"}, NodesPerMember: Roles{Validators: 2}}, nil},

		{"no members", Config{}, ErrNoMembers},
		{"upper case", Config{Members: []string{"Acme"}}, ErrBadMember},
		{"admin is reserved", Config{Members: []string{"admin"}}, ErrBadMember},
		{"empty name", Config{Members: []string{"acme", ""}}, ErrBadMember},
		{"separator", Config{Members: []string{"a,b"}}, ErrBadMember},
		{"path in name", Config{Members: []string{"../etc"}}, ErrBadMember},
		{"too long", Config{Members: []string{strings.Repeat("a", 33)}}, ErrBadMember},
		{"duplicate", Config{Members: []string{"acme", "globex", "acme"}}, ErrDuplicateMember},
		{"no validator", Config{Members: []string{"acme"}, NodesPerMember: Roles{Bootnodes: 1, Tx: 1}}, ErrBadRoles},
		{"negative", Config{Members: []string{"acme"}, NodesPerMember: Roles{Validators: 1, Tx: -1}}, ErrBadRoles},
		{"too many", Config{Members: []string{"acme"}, NodesPerMember: Roles{Validators: MaxNodesPerRole + 1}}, ErrBadRoles},
		{"zero prefund amount", Config{Members: []string{"acme"}, PrefundWei: big.NewInt(0)}, ErrBadPrefund},
		{"negative prefund amount", Config{Members: []string{"acme"}, PrefundWei: big.NewInt(-1)}, ErrBadPrefund},
		{"zero prefund address", Config{Members: []string{"acme"}, Prefund: []common.Address{{}}}, ErrBadPrefund},
		{"unknown consensus", Config{Consensus: "pow", Members: []string{"acme"}}, ErrBadConsensus},
		{"upper-case consensus", Config{Consensus: "BFT", Members: []string{"acme"}}, ErrBadConsensus},
		{"bft, two validators each", Config{Members: []string{"acme"}, NodesPerMember: Roles{Validators: 2}}, ErrOneValidator},
		{"bft, no validator", Config{Members: []string{"acme"}, NodesPerMember: Roles{Tx: 1}}, ErrBadRoles},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := tc.cfg.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.validate(); !errors.Is(err, tc.err) {
				t.Errorf("validate() = %v, want %v", err, tc.err)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Config{Members: []string{"acme"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Consensus != ConsensusBFT || cfg.Out != DefaultOut || cfg.NodesPerMember != DefaultRoles ||
		cfg.GasLimit != DefaultGasLimit || cfg.PrefundWei.Cmp(DefaultPrefundWei()) != 0 || cfg.Logger == nil {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if cfg.Period != 0 || cfg.GenesisTime.IsZero() || cfg.GenesisTime.Location() != time.UTC {
		t.Errorf("bft defaults: period %d (want none), genesis time %v (want now, UTC)", cfg.Period, cfg.GenesisTime)
	}
	if cfg.ChainID < chainIDMin || cfg.ChainID >= chainIDMax {
		t.Errorf("default chain id %d outside [%d, %d)", cfg.ChainID, chainIDMin, chainIDMax)
	}
	other, _ := Config{}.withDefaults()
	if other.ChainID == cfg.ChainID {
		t.Errorf("two default chain ids are both %d", cfg.ChainID) // 1 in 2 billion
	}
	clique, _ := Config{Consensus: ConsensusClique}.withDefaults()
	if clique.Period != DefaultPeriod || !clique.GenesisTime.IsZero() {
		t.Errorf("clique defaults: period %d, genesis time %v", clique.Period, clique.GenesisTime)
	}
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	given, _ := Config{Consensus: ConsensusClique, ChainID: 4242, Period: 5, NodesPerMember: Roles{Validators: 2}}.withDefaults()
	if given.ChainID != 4242 || given.Period != 5 || given.NodesPerMember != (Roles{Validators: 2}) {
		t.Errorf("given values overridden: %+v", given)
	}
	bft, _ := Config{GenesisTime: at, Period: 5}.withDefaults()
	if !bft.GenesisTime.Equal(at) || bft.GenesisTime.Location() != time.UTC || bft.Period != 0 {
		t.Errorf("bft: genesis time %v (want %v in UTC), period %d (want none)", bft.GenesisTime, at, bft.Period)
	}
}

func TestParseConsensus(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Consensus
		err  error
	}{
		{"bft", ConsensusBFT, nil},
		{"clique", ConsensusClique, nil},
		{"", "", ErrBadConsensus},
		{"Clique", "", ErrBadConsensus},
		{"qbft", "", ErrBadConsensus},
	} {
		got, err := ParseConsensus(tc.in)
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("ParseConsensus(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// Every message must say what to do, on one line, because the CLI prints it.
func TestErrorMessages(t *testing.T) {
	for _, err := range []error{ErrNoMembers, ErrBadMember, ErrDuplicateMember, ErrBadRoles,
		ErrBadPrefund, ErrExists, ErrUnwritable, ErrBadExtraData, ErrBadConsensus, ErrOneValidator} {
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, ": ") {
			t.Errorf("%q: want one line, \"problem: what to do\"", msg)
		}
	}
}
