package agent

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/common"
)

// proverClient adds the proof calls to fakeClient (pure-logic tests only;
// TestStatusProofsWithGeth113 runs them against real geth and the registrar).
type proverClient struct {
	*fakeClient
	header    []byte
	headerErr error
	signErr   error
	headers   int
	signs     int
}

func (p *proverClient) RawHeader(context.Context, uint64) ([]byte, error) {
	p.headers++
	return p.header, p.headerErr
}

func (p *proverClient) SignText(context.Context, common.Address, []byte) ([]byte, error) {
	p.signs++
	if p.signErr != nil {
		return nil, p.signErr
	}
	return make([]byte, 65), nil
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func proofAgent(t *testing.T, relay common.Address) (*Agent, *proverClient, *fakeClock) {
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	pc := &proverClient{fakeClient: &fakeClient{}, header: []byte{0xc0}}
	a := newUnitAgent(t, pc.fakeClient, Config{Relay: relay, Now: clock.now})
	a.cfg.Client = pc
	return a, pc, clock
}

const (
	signerHex = "0x00000000000000000000000000000000000000aa"
	relayHex  = "0x00000000000000000000000000000000000000bb"
)

func TestAddProofs(t *testing.T) {
	ctx := context.Background()
	a, pc, clock := proofAgent(t, common.HexToAddress(relayHex))

	// No head signer (not Clique, or the genesis block): no header.
	st := &api.Status{Head: 0}
	a.addProofs(ctx, st)
	if st.HeadHeader != "" || pc.headers != 0 {
		t.Fatalf("header sent without a head signer: %+v", st)
	}
	// A Clique head and a signing coinbase: both proofs.
	st = &api.Status{Head: 7, HeadSigner: signerHex, Coinbase: signerHex}
	a.addProofs(ctx, st)
	if st.HeadHeader != "0xc0" || len(st.CoinbaseSig) != 2+130 {
		t.Fatalf("proofs = %q, %q", st.HeadHeader, st.CoinbaseSig)
	}
	// The signature is made once per coinbase.
	st = &api.Status{Head: 8, HeadSigner: signerHex, Coinbase: signerHex}
	a.addProofs(ctx, st)
	if pc.signs != 1 || st.CoinbaseSig == "" {
		t.Fatalf("signed %d times; sig %q", pc.signs, st.CoinbaseSig)
	}
	// The relay account proves nothing: never signed for.
	st = &api.Status{Coinbase: relayHex}
	a.addProofs(ctx, st)
	if st.CoinbaseSig != "" || pc.signs != 1 {
		t.Fatalf("relay coinbase signed: %+v (%d signs)", st, pc.signs)
	}
	// A key that will not sign is asked again only after proofRetry.
	pc.signErr = errors.New("authentication needed: password or unlock")
	other := "0x00000000000000000000000000000000000000cc"
	for i := range 3 {
		st = &api.Status{Coinbase: other}
		a.addProofs(ctx, st)
		if st.CoinbaseSig != "" {
			t.Fatalf("round %d: a signature from a failing key", i)
		}
		clock.t = clock.t.Add(proofRetry / 3)
	}
	if pc.signs != 2 {
		t.Fatalf("a locked key asked %d times within proofRetry, want once", pc.signs-1)
	}
	clock.t = clock.t.Add(proofRetry)
	pc.signErr = nil
	st = &api.Status{Coinbase: other}
	a.addProofs(ctx, st)
	if st.CoinbaseSig == "" || pc.signs != 3 {
		t.Fatalf("an unlocked key not asked again after proofRetry (%d signs)", pc.signs)
	}
	// Oversized headers are not sent; a client without the debug API is
	// not asked again.
	pc.header = make([]byte, api.MaxHeaderHex)
	st = &api.Status{Head: 9, HeadSigner: signerHex}
	a.addProofs(ctx, st)
	if st.HeadHeader != "" {
		t.Fatal("an oversized header was sent")
	}
	pc.headerErr = &ethclient.Error{Method: "debug_getRawHeader", Kind: ethclient.ErrMethodNotFound}
	n := pc.headers
	for range 2 {
		a.addProofs(ctx, &api.Status{Head: 9, HeadSigner: signerHex})
	}
	if pc.headers != n+1 {
		t.Fatalf("debug_getRawHeader asked %d times after method-not-found", pc.headers-n)
	}
}

// A status the registrar refuses for its proofs is sent again without them
// (the lease does not lapse for a proof), and proofs are left out for
// proofPause; a refusal for another reason is returned as it is.
func TestWithoutProofs(t *testing.T) {
	ctx := context.Background()
	a, _, clock := proofAgent(t, common.Address{})
	refuse := &registrarclient.APIError{Status: 400, Code: "invalid", Message: "status.head_header: no Clique seal"}
	var sent []api.Status
	send := func(st *api.Status) error {
		sent = append(sent, *st)
		if hasProofs(st) {
			return refuse
		}
		return nil
	}
	st := &api.Status{Head: 7, HeadSigner: signerHex, Coinbase: signerHex}
	a.addProofs(ctx, st)
	if err := a.withoutProofs(st, send); err != nil {
		t.Fatalf("renewal failed for its proofs: %v", err)
	}
	if len(sent) != 2 || hasProofs(&sent[1]) || sent[1].Head != 7 {
		t.Fatalf("sent %+v", sent)
	}
	st = &api.Status{Head: 8, HeadSigner: signerHex, Coinbase: signerHex}
	a.addProofs(ctx, st)
	if hasProofs(st) {
		t.Fatal("proofs sent again during the pause")
	}
	clock.t = clock.t.Add(proofPause)
	a.addProofs(ctx, st)
	if !hasProofs(st) {
		t.Fatal("proofs not sent after the pause")
	}

	// Refused without proofs too: the error is the caller's.
	sent = nil
	if err := a.withoutProofs(st, func(st *api.Status) error { sent = append(sent, *st); return refuse }); !errors.Is(err, refuse) || len(sent) != 2 {
		t.Fatalf("err %v after %d sends", err, len(sent))
	}
	if a.now().Before(a.proofs.pausedUntil) {
		t.Fatal("proofs paused though the bare status was refused too")
	}
}
