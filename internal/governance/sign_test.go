package governance

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/cometbft/cometbft/crypto/secp256k1"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/privval"
)

// TestSignWithFilePVKey signs with a key file written by CometBFT itself
// and sees the transaction accepted.
func TestSignWithFilePVKey(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "priv_validator_key.json")
	pv, err := privval.GenFilePV(keyFile, filepath.Join(dir, "state.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pv.Save()
	k, err := LoadKeyFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewState(testChain, []Member{{Name: "a", PubKey: pv.Key.PubKey.Bytes(), Power: 10}, {Name: "b", PubKey: pub("b"), Power: 10}}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	tx, err := SignProposal(k, prop(add("c"), 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Apply(s, tx, 1); err != nil {
		t.Fatalf("a proposal signed with the FilePV key: %v", err)
	}

	if _, err := LoadKeyFile(filepath.Join(dir, "missing.json")); err == nil {
		t.Fatal("a missing file was read")
	}
	bad := filepath.Join(dir, "secp.json")
	sk := secp256k1.GenPrivKey()
	b, _ := cmtjson.Marshal(privval.FilePVKey{Address: sk.PubKey().Address(), PubKey: sk.PubKey(), PrivKey: sk})
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyFile(bad); err == nil {
		t.Fatal("a secp256k1 key file was taken as a validator key")
	}
	if _, err := ParseKeyFile([]byte("{")); err == nil {
		t.Fatal("broken JSON was taken as a key file")
	}
}
