package governance

import (
	"bytes"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/ethereum/go-ethereum/rlp"
)

const testChain = "consortium-test"

// key is a fixed key per name, so failures name the same keys every run.
func key(name string) ed25519.PrivKey { return ed25519.GenPrivKeyFromSecret([]byte("key of " + name)) }

func pub(name string) ed25519.PubKey { return key(name).PubKey().(ed25519.PubKey) }

// members is a state of equal-power members named by names, TTL 100.
func members(t testing.TB, names ...string) *State {
	t.Helper()
	var ms []Member
	for _, n := range names {
		ms = append(ms, Member{Name: n, PubKey: pub(n), Power: 10})
	}
	s, err := NewState(testChain, ms, Config{ProposalTTL: 100})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func add(name string) Action {
	return Action{Kind: ActionAdd, Member: name, PubKey: pub(name), Power: 10}
}

func remove(name string) Action { return Action{Kind: ActionRemove, Member: name} }

func rotate(name, newKey string) Action {
	return Action{Kind: ActionRotate, Member: name, PubKey: pub(newKey)}
}

func prop(a Action, anchor uint64) Proposal {
	return Proposal{ChainID: testChain, Anchor: anchor, Action: a}
}

// proposeTx is signer's signed proposal (signer names a key, member or not).
func proposeTx(t testing.TB, signer string, p Proposal) []byte {
	t.Helper()
	tx, err := SignProposal(key(signer), p)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func voteTx(t testing.TB, signer string, id ID) []byte {
	t.Helper()
	tx, err := SignVote(key(signer), testChain, id)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func mustApply(t testing.TB, s *State, tx []byte, h uint64) (*State, []Event, []abci.ValidatorUpdate) {
	t.Helper()
	n, ev, up, err := Apply(s, tx, h)
	if err != nil {
		t.Fatalf("Apply at %d: %v", h, err)
	}
	return n, ev, up
}

// update is the validator update a test expects.
func update(name string, power int64) abci.ValidatorUpdate {
	return abci.NewValidatorUpdate(pub(name), power)
}

func sameUpdates(got, want []abci.ValidatorUpdate) bool {
	if len(got) != len(want) {
		return false
	}
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, g := range got {
			if !used[i] && g.Power == w.Power && g.PubKeyType == w.PubKeyType && bytes.Equal(g.PubKeyBytes, w.PubKeyBytes) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func names(s *State) []string {
	var out []string
	for _, m := range s.Members {
		out = append(out, m.Name)
	}
	return out
}

func mustRLP(t testing.TB, v any) []byte {
	t.Helper()
	b, err := rlp.EncodeToBytes(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
