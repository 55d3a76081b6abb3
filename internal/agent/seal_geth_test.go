package agent_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// cliqueGenesis is gethtest's Clique genesis with signer as its only signer
// and a one-second period.
func cliqueGenesis(t *testing.T, signer common.Address) []byte {
	t.Helper()
	raw, err := gethtest.DefaultGenesis(gethtest.V113)
	if err != nil {
		t.Fatal(err)
	}
	var g map[string]any
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	g["extraData"] = "0x" + strings.Repeat("00", 32) + strings.ToLower(signer.Hex()[2:]) + strings.Repeat("00", 65)
	g["config"].(map[string]any)["clique"] = map[string]any{"period": 1, "epoch": 30000}
	out, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// signerKeystore makes a keystore holding one signer account (password
// "pw") and returns it, the signer, and the geth flags that unlock it.
func signerKeystore(t *testing.T) (dir string, signer common.Address, unlock []string) {
	t.Helper()
	dir = t.TempDir()
	acct, err := keystore.StoreKey(dir, "pw", keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(t.TempDir(), "password")
	if err := os.WriteFile(pw, []byte("pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, acct.Address, []string{"--keystore", dir, "--unlock", acct.Address.Hex(), "--password", pw, "--allow-insecure-unlock"}
}

func head(t *testing.T, n *tnode) uint64 {
	var h hexutil.Uint64
	if err := n.geth.Call(&h, "eth_blockNumber"); err != nil {
		return 0
	}
	return uint64(h)
}

func mining(n *tnode) bool {
	var on bool
	return n.geth.Call(&on, "eth_mining") == nil && on
}

func coinbase(n *tnode) common.Address {
	var a common.Address
	n.geth.Call(&a, "eth_coinbase")
	return a
}

// TestSealGateWithGeth113: a Clique signer whose geth runs without --mine is
// started by its agent only once its peer set is connected, every geth is
// marked synced with its relay account at start, and a restarted signer is
// started again.
func TestSealGateWithGeth113(t *testing.T) {
	// Leases of 5 min (renewals every 100 s): the statuses the gate reads
	// are fresh only because an agent reports at once when its set is
	// connected.
	s := newSuiteTTL(t, gethtest.V113, 5*time.Minute)
	m := s.addMember("acme")

	ks, signer, unlock := signerKeystore(t)
	relay, err := agent.RelayAccount(ks)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := agent.RelayAccount(ks); err != nil || again != relay || relay == signer {
		t.Fatalf("RelayAccount again = %s, %v; want %s, not the signer %s", again, err, relay, signer)
	}
	genesis := cliqueGenesis(t, signer)
	v := s.startNodeWith(m, "validator", "validator", gethtest.Config{Genesis: genesis, ExtraArgs: unlock}, func(c *agent.Config) {
		c.Seal, c.Relay = signer, relay
		c.SealCheck = 200 * time.Millisecond
		c.SealAnyway = 10 * time.Minute // only the gate may open it here
	})

	// Alone, the signer has no peer set to be connected to: it must not seal,
	// but it is marked synced (the relay account was its etherbase).
	testutil.EventuallyTrue(t, 60*time.Second, "validator marked synced (etherbase = relay)", func() bool { return coinbase(v) == relay })
	time.Sleep(4 * time.Second) // four Clique periods
	if h := head(t, v); h != 0 || mining(v) {
		t.Fatalf("the signer sealed before its peers were connected: head %d, mining %v", h, mining(v))
	}

	// A transaction node of the member joins: once both are linked, the
	// agent starts the signer.
	tks := t.TempDir()
	trelay, err := agent.RelayAccount(tks)
	if err != nil {
		t.Fatal(err)
	}
	tx := s.startNodeWith(m, "tx", "tx", gethtest.Config{Genesis: genesis, ExtraArgs: []string{"--keystore", tks}}, func(c *agent.Config) {
		c.Relay = trelay
	})
	s.waitMesh([]*tnode{v, tx}, 60*time.Second)
	testutil.EventuallyTrue(t, 20*time.Second, "the tx node's new link reported at once (not at its renewal in 100 s)", func() bool {
		view, err := s.reg.Registry.Node(registry.Principal{Admin: true}, tx.geth.ID().String())
		return err == nil && view.Status != nil && slices.Contains(view.Status.PeerIDs, v.geth.ID().String())
	})
	d := testutil.EventuallyTrue(t, 60*time.Second, "blocks sealed and imported by the tx node", func() bool { return head(t, v) >= 2 && head(t, tx) >= 2 })
	t.Logf("sealing started and block 2 reached the tx node %v after the mesh", d.Round(time.Millisecond))
	if cb := coinbase(v); cb != signer {
		t.Fatalf("validator etherbase %s, want the signer %s", cb, signer)
	}
	if cb := coinbase(tx); cb != trelay || mining(tx) {
		t.Fatalf("tx node: etherbase %s mining %v; want its relay %s and no miner", cb, mining(tx), trelay)
	}

	// The signer's geth restarts (without --mine): its agent starts it again.
	before := head(t, v)
	if err := v.geth.Restart(); err != nil {
		t.Fatal(err)
	}
	d = testutil.EventuallyTrue(t, 90*time.Second, "restarted signer sealing again", func() bool { return mining(v) && head(t, v) > before+1 })
	t.Logf("restarted signer sealing again after %v", d.Round(time.Millisecond))
}

// TestStatusProofsWithGeth113: the agent sends its head block's header and
// its coinbase key's signature with its status, so the registrar marks a
// signer's head and coinbase checked, not self-reported (issue 18); a
// transaction node's head is checked too, and its relay coinbase, which
// proves nothing, is not sent.
func TestStatusProofsWithGeth113(t *testing.T) {
	s := newSuite(t, gethtest.V113)
	m := s.addMember("acme")
	ks, signer, unlock := signerKeystore(t)
	relay, err := agent.RelayAccount(ks)
	if err != nil {
		t.Fatal(err)
	}
	genesis := cliqueGenesis(t, signer)
	v := s.startNodeWith(m, "validator", "validator", gethtest.Config{Genesis: genesis, ExtraArgs: unlock}, func(c *agent.Config) {
		c.Seal, c.Relay = signer, relay
		c.SealCheck, c.SealAnyway = 200*time.Millisecond, time.Second // alone: seal regardless
	})
	tks := t.TempDir()
	trelay, err := agent.RelayAccount(tks)
	if err != nil {
		t.Fatal(err)
	}
	tx := s.startNodeWith(m, "tx", "tx", gethtest.Config{Genesis: genesis, ExtraArgs: []string{"--keystore", tks}}, func(c *agent.Config) {
		c.Relay = trelay
	})
	status := func(n *tnode) *api.Status {
		view, err := s.reg.Registry.Node(registry.Principal{Admin: true}, n.geth.ID().String())
		if err != nil {
			return nil
		}
		return view.Status
	}
	want := strings.ToLower(signer.Hex())
	var last *api.Status
	testutil.EventuallyTrue(t, 90*time.Second, "the validator's head and coinbase checked by the registrar", func() bool {
		last = status(v)
		return last != nil && last.Head > 0 && last.SealChecked && last.CoinbaseChecked &&
			strings.EqualFold(last.HeadSigner, want) && strings.EqualFold(last.Coinbase, want)
	})
	if last.HeadHeader != "" || last.CoinbaseSig != "" {
		t.Fatalf("the registrar kept the proofs: %+v", last)
	}
	testutil.EventuallyTrue(t, 60*time.Second, "the tx node's head checked (sealed by the validator)", func() bool {
		st := status(tx)
		return st != nil && st.Head > 0 && st.SealChecked && strings.EqualFold(st.HeadSigner, want)
	})
	if st := status(tx); st.CoinbaseChecked {
		t.Fatalf("the tx node's relay coinbase %s marked checked: %+v", st.Coinbase, st)
	}
}
