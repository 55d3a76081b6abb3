package devnet

import (
	"context"
	"errors"
	"testing"

	"github.com/consortium/consortium/internal/consortiuminit"
)

// TestVoteInNeedsTheCLI: a BFT join casts its votes with the consortium
// binary's own `member propose|vote`; a devnet given none says so instead
// of starting a vote it cannot finish. A member without a validator needs
// no vote.
func TestVoteInNeedsTheCLI(t *testing.T) {
	d := &Devnet{}
	say := func(string, ...any) { t.Error("a line was said before the CLI check") }
	err := d.voteIn(context.Background(), consortiuminit.Member{Name: "e", Validator: &consortiuminit.Validator{PubKey: make([]byte, 32)}}, say)
	if !errors.Is(err, ErrNoCLI) {
		t.Errorf("voteIn without Config.CLI: %v, want ErrNoCLI", err)
	}
	if err := d.voteIn(context.Background(), consortiuminit.Member{Name: "e"}, say); err != nil {
		t.Errorf("voteIn for a member without a validator: %v, want nil", err)
	}
}
