package report

import (
	"testing"
	"time"

	"github.com/consortium/consortium/internal/consensus"
	"github.com/consortium/consortium/internal/registry"
)

func TestStatus(t *testing.T) {
	if Status(consensus.Status{}, nil) != nil {
		t.Error("a report before the first block")
	}
	a, b := "AA00000000000000000000000000000000000000", "BB00000000000000000000000000000000000000"
	got := Status(consensus.Status{
		Height: 9, Round: 1, BlockProposer: b, ValidatorAddress: a, BlockInterval: 1100 * time.Millisecond,
		Signers: []string{a}, Absent: []string{b}, Powers: map[string]int64{a: 1, b: 2},
	}, map[string]string{a: "acme"})
	want := registry.ConsensusStatus{Height: 9, Round: 1, Proposer: b, Validator: a, BlockMillis: 1100,
		Validators: []registry.ValidatorVote{{Address: a, Name: "acme", Power: 1, Signed: true}, {Address: b, Power: 2}}}
	if got == nil || got.Height != want.Height || got.Round != want.Round || got.Proposer != want.Proposer ||
		got.Validator != want.Validator || got.BlockMillis != want.BlockMillis || len(got.Validators) != 2 ||
		got.Validators[0] != want.Validators[0] || got.Validators[1] != want.Validators[1] {
		t.Errorf("Status = %+v, want %+v", got, want)
	}
}
