package agent

import (
	"context"
	"errors"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/ethclient"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// Proofs in the status (docs/api.md): the registrar cannot see the chain,
// so a head signer and a coinbase are the node's word unless the status
// carries what proves them. The agent sends the head block's header (its
// Clique seal names the signer, so the registrar marks the head
// seal_checked) and its coinbase key's signature of "consortium node <ID>"
// (coinbase_checked: whoever runs the node holds that key, so the blocks
// that key seals are this member's on the dashboard).
//
// A proof must never cost the lease: a status the registrar refuses while
// it carries proofs is sent again at once without them, and if that one is
// taken the proofs are left out for proofPause.

const (
	// proofRetry is how long a coinbase whose key would not sign (locked,
	// or not in the client's keystore) is left before asking again.
	proofRetry = time.Minute
	// proofPause is how long proofs are left out after the registrar
	// refused a status for them.
	proofPause = 10 * time.Minute
)

// proofState is what the agent knows about its proofs. Only the main loop
// (registration and renewal) uses it.
type proofState struct {
	noHeader    bool           // the client has no debug_getRawHeader: stop asking
	sigFor      common.Address // the coinbase sig is for (or failed for)
	sig         string         // 0x-hex; "" while the key would not sign
	sigFailedAt time.Time      // when signing for sigFor last failed
	pausedUntil time.Time      // the registrar refused a status for its proofs
}

// addProofs adds to st (HeadSigner and Coinbase already filled in) the
// proofs the client can give. st.HeadSigner is set only on a Clique chain,
// so no header is sent where it could not prove anything.
func (a *Agent) addProofs(ctx context.Context, st *api.Status) {
	p, ok := a.cfg.Client.(ethclient.Prover)
	ps := &a.proofs
	now := a.now()
	if !ok || now.Before(ps.pausedUntil) {
		return
	}
	if st.HeadSigner != "" && !ps.noHeader {
		b, err := p.RawHeader(ctx, st.Head)
		switch {
		case errors.Is(err, ethclient.ErrMethodNotFound):
			a.log.Info("the client does not serve debug_getRawHeader (over HTTP: --http.api debug); the head is reported without its proof", "err", err)
			ps.noHeader = true
		case err == nil && 2+2*len(b) <= api.MaxHeaderHex:
			st.HeadHeader = hexutil.Encode(b)
		}
	}
	if st.Coinbase == "" || !common.IsHexAddress(st.Coinbase) {
		return
	}
	cb := common.HexToAddress(st.Coinbase)
	if cb == a.cfg.Relay {
		return // not a signer: nothing to prove, and its key is locked
	}
	if cb != ps.sigFor || (ps.sig == "" && now.Sub(ps.sigFailedAt) >= proofRetry) {
		ps.sigFor, ps.sig = cb, ""
		sig, err := p.SignText(ctx, cb, api.CoinbaseMessage(a.nodeID().String()))
		if err != nil || len(sig) != 65 {
			ps.sigFailedAt = now
			a.log.Debug("the coinbase key does not sign; its coinbase is reported without proof", "coinbase", st.Coinbase, "err", err)
		} else {
			ps.sig = hexutil.Encode(sig)
		}
	}
	st.CoinbaseSig = ps.sig
}

// hasProofs reports whether st carries a proof.
func hasProofs(st *api.Status) bool {
	return st != nil && (st.HeadHeader != "" || st.CoinbaseSig != "")
}

// withoutProofs sends st with send and, when the registrar refuses it
// (400) while it carries proofs, sends it again without them; when that
// one is taken the proofs were the cause, and are left out for proofPause.
func (a *Agent) withoutProofs(st *api.Status, send func(*api.Status) error) error {
	err := send(st)
	if err == nil || !hasProofs(st) || !registrarclient.IsStatus(err, 400) {
		return err
	}
	bare := *st
	bare.HeadHeader, bare.CoinbaseSig = "", ""
	if err2 := send(&bare); err2 != nil {
		return err2
	}
	a.proofs.pausedUntil = a.now().Add(proofPause)
	a.log.Warn("the registrar refused the status's proofs; reporting without them for a while", "err", err, "for", proofPause)
	return nil
}
