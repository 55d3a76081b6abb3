package consortiuminit

import (
	"errors"
	"math/big"
	"strings"
	"testing"

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
	if cfg.Out != DefaultOut || cfg.NodesPerMember != DefaultRoles || cfg.Period != DefaultPeriod ||
		cfg.GasLimit != DefaultGasLimit || cfg.PrefundWei.Cmp(DefaultPrefundWei()) != 0 || cfg.Logger == nil {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if cfg.ChainID < chainIDMin || cfg.ChainID >= chainIDMax {
		t.Errorf("default chain id %d outside [%d, %d)", cfg.ChainID, chainIDMin, chainIDMax)
	}
	other, _ := Config{}.withDefaults()
	if other.ChainID == cfg.ChainID {
		t.Errorf("two default chain ids are both %d", cfg.ChainID) // 1 in 2 billion
	}
	given, _ := Config{ChainID: 4242, Period: 5, NodesPerMember: Roles{Validators: 2}}.withDefaults()
	if given.ChainID != 4242 || given.Period != 5 || given.NodesPerMember != (Roles{Validators: 2}) {
		t.Errorf("given values overridden: %+v", given)
	}
}

// Every message must say what to do, on one line, because the CLI prints it.
func TestErrorMessages(t *testing.T) {
	for _, err := range []error{ErrNoMembers, ErrBadMember, ErrDuplicateMember, ErrBadRoles,
		ErrBadPrefund, ErrExists, ErrUnwritable, ErrBadExtraData} {
		msg := err.Error()
		if strings.Contains(msg, "\n") || !strings.Contains(msg, ": ") {
			t.Errorf("%q: want one line, \"problem: what to do\"", msg)
		}
	}
}
