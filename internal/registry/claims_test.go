package registry

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// sealedHeader is a Clique header of block number sealed by key, RLP hex.
func sealedHeader(t testing.TB, key *ecdsa.PrivateKey, number uint64) string {
	h := &types.Header{Number: new(big.Int).SetUint64(number), Difficulty: big.NewInt(2), GasLimit: 30_000_000, Time: 1_700_000_000 + number,
		Extra: make([]byte, 32+crypto.SignatureLength), BaseFee: big.NewInt(7)}
	sig, err := crypto.Sign(sealHash(h), key)
	if err != nil {
		t.Fatal(err)
	}
	copy(h.Extra[32:], sig)
	b, err := rlp.EncodeToBytes(h)
	if err != nil {
		t.Fatal(err)
	}
	return hexutil.Encode(b)
}

// coinbaseSig is eth_sign's signature by key of the message for node id.
func coinbaseSig(t testing.TB, key *ecdsa.PrivateKey, id string) string {
	sig, err := crypto.Sign(accounts.TextHash(api.CoinbaseMessage(id)), key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	return hexutil.Encode(sig)
}

func addr(k *ecdsa.PrivateKey) string {
	return strings.ToLower(crypto.PubkeyToAddress(k.PublicKey).Hex())
}

func TestCheckProofs(t *testing.T) {
	signer, other := testutil.Key(t), testutil.Key(t)
	id := strings.Repeat("ab", 32)
	hdr := sealedHeader(t, signer, 42)
	for _, tc := range []struct {
		name       string
		st         Status
		ok         bool
		seal, coin bool
	}{
		{"no proofs", Status{Head: 42, HeadSigner: addr(signer)}, true, false, false},
		{"seal", Status{Head: 42, HeadSigner: addr(signer), HeadHeader: hdr}, true, true, false},
		{"seal names the signer", Status{Head: 42, HeadHeader: hdr}, true, true, false},
		{"seal of another block", Status{Head: 43, HeadSigner: addr(signer), HeadHeader: hdr}, false, false, false},
		{"seal of another signer", Status{Head: 42, HeadSigner: addr(other), HeadHeader: hdr}, false, false, false},
		{"not a header", Status{Head: 42, HeadHeader: "0x01020304"}, false, false, false},
		{"not hex", Status{Head: 42, HeadHeader: "zz"}, false, false, false},
		{"coinbase", Status{Coinbase: addr(signer), CoinbaseSig: coinbaseSig(t, signer, id)}, true, false, true},
		{"coinbase signed by another key", Status{Coinbase: addr(signer), CoinbaseSig: coinbaseSig(t, other, id)}, false, false, false},
		{"coinbase signed for another node", Status{Coinbase: addr(signer), CoinbaseSig: coinbaseSig(t, signer, strings.Repeat("cd", 32))}, false, false, false},
		{"signature without coinbase", Status{CoinbaseSig: coinbaseSig(t, signer, id)}, false, false, false},
		{"flag set by the agent", Status{SealChecked: true}, false, false, false},
		{"flag set by the agent 2", Status{CoinbaseChecked: true}, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.st
			err := checkProofs(&st, id)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if err == nil && (st.SealChecked != tc.seal || st.CoinbaseChecked != tc.coin || st.HeadHeader != "" || st.CoinbaseSig != "") {
				t.Fatalf("status after the check: %+v", st)
			}
			if tc.seal && st.HeadSigner != addr(signer) {
				t.Fatalf("head_signer %s", st.HeadSigner)
			}
		})
	}
}

// Claims another member's reports contradict are refused, and leave the
// node's status as it was: a coinbase another member proved its own, a
// head far beyond every other member's nodes.
func TestClaimsAgainstOtherMembers(t *testing.T) {
	c := newCluster(t, 1, false)
	r := c.regs[0]
	c.addMember(r, "a")
	c.addMember(r, "b")
	ctx := context.Background()
	pa, pb := Principal{Name: "a"}, Principal{Name: "b"}
	na, nb, nb2 := newNode(t, "a", "validator"), newNode(t, "b", "validator"), newNode(t, "b", "tx")
	signer := testutil.Key(t)
	c.register(r, na, 1, "10.0.0.1")
	c.register(r, nb, 1, "10.0.1.1")
	c.register(r, nb2, 1, "10.0.1.2")
	c.sync() // the registrations' echoes are applied before the renewals

	// Without other members' reports there is nothing to compare with.
	if _, err := r.Renew(ctx, pb, nb.id, &Status{Head: 1e12}); err != nil {
		t.Fatalf("a first report: %v", err)
	}
	if _, err := r.Renew(ctx, pb, nb.id, &Status{Head: 0}); err != nil {
		t.Fatal(err)
	}
	// a reports head 600 and proves its coinbase.
	if _, err := r.Renew(ctx, pa, na.id, &Status{Head: 600, Coinbase: addr(signer), CoinbaseSig: coinbaseSig(t, signer, na.id)}); err != nil {
		t.Fatal(err)
	}
	if v := nodeOf(t, r, na.id); !v.Status.CoinbaseChecked || v.Status.CoinbaseSig != "" {
		t.Fatalf("a's status %+v", v.Status)
	}
	for name, st := range map[string]*Status{
		"a head far beyond a's":  {Head: 600 + MaxHeadLead + 1},
		"a head of 10^12":        {Head: 1e12},
		"a's proven coinbase":    {Head: 600, Coinbase: addr(signer)},
		"a's coinbase, any case": {Head: 600, Coinbase: strings.ToUpper("0x" + addr(signer)[2:])},
	} {
		before := nodeOf(t, r, nb.id).Status
		if _, err := r.Renew(ctx, pb, nb.id, st); !errors.Is(err, ErrInvalid) {
			t.Errorf("b claims %s: %v, want ErrInvalid", name, err)
		}
		if _, _, err := r.Register(ctx, pb, Registration{Role: "tx", ENR: nb2.reg(t, 1, "10.0.1.2").ENR, Status: st}); !errors.Is(err, ErrInvalid) {
			t.Errorf("b registers with %s: %v, want ErrInvalid", name, err)
		}
		if after := nodeOf(t, r, nb.id).Status; !statusEqual(*after, *before) {
			t.Errorf("a refused claim changed the status: %+v -> %+v", before, after)
		}
	}
	// Within reach, and a's own nodes are not compared with a's.
	if _, err := r.Renew(ctx, pb, nb.id, &Status{Head: 600 + MaxHeadLead}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Renew(ctx, pa, na.id, &Status{Head: 600 + 2*MaxHeadLead, Coinbase: addr(signer)}); err != nil {
		t.Fatalf("a's own coinbase, a head within reach of b's: %v", err)
	}
}

// FuzzStatus: a status decoded and checked never panics, and one that
// passes carries no proof and only flags its proofs earned.
func FuzzStatus(f *testing.F) {
	k := testutil.Key(f)
	id := strings.Repeat("ab", 32)
	f.Add([]byte(`{"head":42,"head_header":"` + sealedHeader(f, k, 42) + `"}`))
	f.Add([]byte(`{"coinbase":"` + addr(k) + `","coinbase_sig":"` + coinbaseSig(f, k, id) + `"}`))
	f.Add([]byte(`{"head":1,"seal_checked":true}`))
	f.Add([]byte(`{"head_header":"0xf90200"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStatus(b)
		if err != nil {
			return
		}
		if err := checkProofs(&st, id); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		if st.HeadHeader != "" || st.CoinbaseSig != "" {
			t.Fatal("a checked status keeps its proofs")
		}
	})
}
