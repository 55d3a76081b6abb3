package governance

import (
	"testing"

	cmttypes "github.com/cometbft/cometbft/types"
)

func TestGenesis(t *testing.T) {
	var vals []cmttypes.GenesisValidator
	for _, n := range []string{"c", "a", "b"} {
		vals = append(vals, cmttypes.GenesisValidator{Name: n, PubKey: pub(n), Power: 10})
	}
	ms, err := MembersFromGenesis(vals)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewState(testChain, ms, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if s.ProposalTTL != DefaultConfig().ProposalTTL {
		t.Fatal("default TTL not filled in")
	}
	if err := CheckValidators(s, s.Validators()); err != nil {
		t.Fatal(err)
	}
	other := members(t, "a", "b", "d")
	if err := CheckValidators(s, other.Validators()); err == nil {
		t.Fatal("a different set passed CheckValidators")
	}
	vals[0].Name = ""
	ms, _ = MembersFromGenesis(vals)
	if _, err := NewState(testChain, ms, Config{}); err == nil {
		t.Fatal("a nameless validator seeded a state")
	}
	vals[0].Name, vals[1].Name = "b", "b"
	ms, _ = MembersFromGenesis(vals)
	if _, err := NewState(testChain, ms, Config{}); err == nil {
		t.Fatal("two validators of one name seeded a state")
	}
}
