package consortiuminit

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
)

// The BFT genesis must be the chain geth v1.17.10 is known to accept
// (testdata/genesis-pos-geth1.17.json): rebuilt from that
// file's inputs it is the same chain config, the same accounts and the same
// genesis block, but for one account the reference holds and we leave out.
func TestBFTGenesisMatchesReference(t *testing.T) {
	ref, err := os.ReadFile("testdata/genesis-pos-geth1.17.json")
	if err != nil {
		t.Fatal(err)
	}
	var want core.Genesis
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	// The P256VERIFY precompile's address, given 1 wei by `geth --dev`'s
	// genesis (so state clearing never touches a precompile), from which the
	// reference was made; a precompile needs no account to run.
	p256 := common.BytesToAddress([]byte{1, 0})
	if _, ok := want.Alloc[p256]; !ok {
		t.Fatalf("reference has no %s: the test's premise changed", p256)
	}
	delete(want.Alloc, p256)

	funded := common.HexToAddress("0xa05292286a6d28af71862368f9199c4263c70733")
	g := bftGenesis(4242, DefaultGasLimit, []common.Address{funded}, DefaultPrefundWei())
	b, err := gethGenesisJSON(g)
	if err != nil {
		t.Fatal(err)
	}
	var got core.Genesis // what geth init reads back from the file
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Config, want.Config) {
		gc, _ := json.MarshalIndent(got.Config, "", " ")
		wc, _ := json.MarshalIndent(want.Config, "", " ")
		t.Errorf("chain config\n%s\nwant\n%s", gc, wc)
	}
	if len(got.Alloc) != len(want.Alloc) {
		t.Errorf("%d accounts, want %d", len(got.Alloc), len(want.Alloc))
	}
	for a, w := range want.Alloc {
		if g, ok := got.Alloc[a]; !ok || !bytes.Equal(g.Code, w.Code) || g.Nonce != w.Nonce || g.Balance.Cmp(w.Balance) != 0 {
			t.Errorf("account %s: %+v, want %+v", a, g, w)
		}
	}
	if gh, wh := got.ToBlock().Hash(), want.ToBlock().Hash(); gh != wh {
		t.Errorf("genesis block %s, reference (without %s) %s", gh, p256, wh)
	}
	if got.ToBlock().Hash() != g.ToBlock().Hash() {
		t.Errorf("the file and the value it was written from make different blocks")
	}
}

func TestCometGenesis(t *testing.T) {
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	member := func(name string) Member {
		pub := ed25519.GenPrivKey().PubKey().(ed25519.PubKey)
		return Member{Name: name, Validator: &Validator{Node: "validator-1", Address: pub.Address(), PubKey: pub, Power: ValidatorPower}}
	}
	for _, tc := range []struct {
		name    string
		members []Member
		chainID string
		vals    int
		faults  int // how many validators may be lost with the chain going on
	}{
		{"one member", []Member{member("a")}, "consortium-1", 1, 0},
		{"three members", []Member{member("a"), member("b"), member("c")}, "consortium-3", 3, 0},
		{"four members", []Member{member("a"), member("b"), member("c"), member("d")}, "consortium-4", 4, 1},
		{"seven members", []Member{member("a"), member("b"), member("c"), member("d"), member("e"), member("f"), member("g")}, "consortium-7", 7, 2},
		{"a member without a validator", []Member{member("a"), {Name: "b"}, member("c")}, "consortium-2", 2, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := cometGenesis(tc.chainID, at, common.Hash{7}, tc.members)
			if err != nil {
				t.Fatal(err)
			}
			b, err := cometGenesisJSON(doc)
			if err != nil {
				t.Fatal(err)
			}
			back, err := cmttypes.GenesisDocFromJSON(b) // parses and validates, as a node does
			if err != nil {
				t.Fatal(err)
			}
			if back.ChainID != tc.chainID || !back.GenesisTime.Equal(at) || !bytes.Equal(back.AppHash, common.Hash{7}.Bytes()) {
				t.Errorf("doc %+v", back)
			}
			vals := make([]*cmttypes.Validator, len(back.Validators))
			for i, v := range back.Validators {
				vals[i] = cmttypes.NewValidator(v.PubKey, v.Power)
				if v.Power != ValidatorPower {
					t.Errorf("validator %s has power %d, want %d", v.Name, v.Power, ValidatorPower)
				}
			}
			vs := cmttypes.NewValidatorSet(vals)
			if err := vs.ValidateBasic(); err != nil {
				t.Fatal(err)
			}
			if vs.Size() != tc.vals {
				t.Fatalf("%d validators, want %d", vs.Size(), tc.vals)
			}
			// Blocks need more than 2/3 of the power: with f validators lost,
			// the rest must still hold it, and with f+1 lost they must not.
			total := vs.TotalVotingPower()
			alive := func(lost int) int64 { return total - int64(lost)*ValidatorPower }
			if alive(tc.faults)*3 <= total*2 || alive(tc.faults+1)*3 > total*2 {
				t.Errorf("%d validators of equal power tolerate other than %d lost", tc.vals, tc.faults)
			}
		})
	}
}

func TestCometGenesisRefusesBadChainID(t *testing.T) {
	for _, id := range []string{"", string(bytes.Repeat([]byte("x"), cmttypes.MaxChainIDLen+1))} {
		if _, err := cometGenesis(id, time.Now(), common.Hash{}, nil); err == nil {
			t.Errorf("chain id %q was accepted", id)
		}
	}
}

func TestCometChainID(t *testing.T) {
	for _, id := range []uint64{1, 4242, chainIDMax - 1, 1<<64 - 1} {
		s := CometChainID(id)
		if len(s) > cmttypes.MaxChainIDLen || s == CometChainID(id+1) {
			t.Errorf("CometChainID(%d) = %q: too long or not unique", id, s)
		}
	}
}
