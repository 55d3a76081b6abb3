package consortiuminit

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/ethereum/go-ethereum/common"
)

// The genesis must be exactly the shape geth v1.13.15 is known to accept:
// rebuilt from the reference file's inputs, it must equal the reference file.
func TestGenesisMatchesReference(t *testing.T) {
	ref, err := os.ReadFile("testdata/genesis-clique-geth1.13.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(ref, &want); err != nil {
		t.Fatal(err)
	}
	got := buildAndDecode(t, []common.Address{factsB, factsA}, nil)
	// init funds the signers too; the reference funds only a third account,
	// which buildAndDecode passes as a prefund.
	alloc := got["alloc"].(map[string]any)
	delete(alloc, "73593f35845728d2a4c3dac6ef59cc5785c563fa")
	delete(alloc, "f9e308a627dff567d0f6888fdca29d102ff557f4")
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		t.Errorf("genesis differs from reference:\n%s\nwant\n%s", g, ref)
	}
}

func TestGenesisFundsSignersAndPrefund(t *testing.T) {
	got := buildAndDecode(t, []common.Address{factsA}, []common.Address{high})
	alloc := got["alloc"].(map[string]any)
	if len(alloc) != 3 {
		t.Fatalf("alloc has %d accounts, want 3: %v", len(alloc), alloc)
	}
	for _, a := range []string{"73593f35845728d2a4c3dac6ef59cc5785c563fa", "a05292286a6d28af71862368f9199c4263c70733", "ffffffffffffffffffffffffffffffffffffffff"} {
		if alloc[a].(map[string]any)["balance"] != "0x33b2e3c9fd0803ce8000000" {
			t.Errorf("account %s: %v", a, alloc[a])
		}
	}
}

func buildAndDecode(t *testing.T, signers, more []common.Address) map[string]any {
	t.Helper()
	fund := append([]common.Address{common.HexToAddress("0xa05292286a6d28af71862368f9199c4263c70733")}, more...)
	b, err := genesisJSON(4242, 2, DefaultGasLimit, signers, fund, DefaultPrefundWei())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	return got
}
