package dashboard

import (
	"testing"

	"github.com/consortium/consortium/internal/registry"
)

func TestChainOf(t *testing.T) {
	va, vb := "aa00000000000000000000000000000000000000", "bb00000000000000000000000000000000000000"
	set := func(signedB bool) []registry.ValidatorVote {
		return []registry.ValidatorVote{{Address: vb, Name: "b", Power: 1, Signed: signedB}, {Address: va, Name: "a", Power: 1, Signed: true}}
	}
	nodes := []Node{
		{ID: id('1'), Member: "a", Live: true, Consensus: &registry.ConsensusStatus{Height: 9, Proposer: va, Validators: set(false)}},
		// The highest, but its lease lapsed: its report is stale.
		{ID: id('2'), Member: "b", Live: false, Consensus: &registry.ConsensusStatus{Height: 50, Validators: set(true)}},
		// A full node at the same height as the validator below.
		{ID: id('3'), Member: "b", Live: true, Consensus: &registry.ConsensusStatus{Height: 10, Proposer: vb, Validators: set(false)}},
		{ID: id('4'), Member: "a", Live: true, Consensus: &registry.ConsensusStatus{Height: 10, Round: 1, Proposer: vb, Validator: va, BlockMillis: 1100, Validators: set(true)}},
		{ID: id('5'), Member: "c", Live: true},
	}
	c := chainOf(nodes)
	if c == nil {
		t.Fatal("no chain")
	}
	if c.Reporter != id('4') || c.ReporterMember != "a" || c.Height != 10 || c.Round != 1 || c.BlockMillis != 1100 {
		t.Errorf("picked %+v, want node 4's report", c)
	}
	if c.ProposerName != "b" || c.Signed != 2 || len(c.Validators) != 2 || c.Validators[0].Name != "a" || !c.SelfReported {
		t.Errorf("summary %+v", c)
	}
	if c.Validators[0].Address != "AA00000000000000000000000000000000000000" {
		t.Errorf("address not upper-cased: %s", c.Validators[0].Address)
	}
	if chainOf(nodes[4:]) != nil {
		t.Error("a chain from nodes without consensus reports")
	}
}
