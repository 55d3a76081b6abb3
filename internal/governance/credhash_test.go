package governance

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// An add proposal may carry the new member's credential hash: it travels
// in the signed proposal, lands on the member when the add passes, and
// survives the state's encoding; the member it names keeps it through a
// key rotation. Nothing else may carry one, and it must be a SHA-256.
func TestAddCarriesCredHash(t *testing.T) {
	hash := sha256.Sum256([]byte("e's secret"))
	a := add("e")
	a.CredHash = hash[:]
	p := prop(a, 1)
	s := members(t, "a", "b", "c", "d")
	tx := proposeTx(t, "a", p)
	dec, err := DecodeTx(tx)
	if err != nil || !bytes.Equal(dec.Proposal.Action.CredHash, hash[:]) {
		t.Fatalf("decoded proposal lost the credential hash: %v", err)
	}
	if withHash, without := p.ID(), prop(add("e"), 1).ID(); withHash == without {
		t.Fatal("the credential hash is not part of the proposal ID")
	}
	s, _, _ = mustApply(t, s, tx, 1)
	s, _, _ = mustApply(t, s, voteTx(t, "b", p.ID()), 2)
	s, _, _ = mustApply(t, s, voteTx(t, "c", p.ID()), 3)
	e, ok := s.Member("e")
	if !ok || !bytes.Equal(e.CredHash, hash[:]) {
		t.Fatalf("member e after the add: %v, hash %x", ok, e.CredHash)
	}
	back, err := Unmarshal(s.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := back.Member("e"); !bytes.Equal(e.CredHash, hash[:]) {
		t.Fatal("the credential hash did not survive Marshal/Unmarshal")
	}
	if a, _ := back.Member("a"); a.CredHash != nil {
		t.Fatalf("genesis member a has a credential hash %x", a.CredHash)
	}
	r := prop(rotate("e", "e2"), 3)
	s, _, _ = mustApply(t, s, proposeTx(t, "e", r), 4)
	for _, m := range []string{"a", "b", "c"} {
		s, _, _ = mustApply(t, s, voteTx(t, m, r.ID()), 5)
	}
	if e, _ := s.Member("e"); !bytes.Equal(e.PubKey, pub("e2")) || !bytes.Equal(e.CredHash, hash[:]) {
		t.Fatal("rotation lost e's credential hash")
	}

	for name, tc := range map[string]struct {
		a    Action
		want error
	}{
		"short hash":       {Action{Kind: ActionAdd, Member: "f", PubKey: pub("f"), Power: 10, CredHash: hash[:20]}, ErrBadCredHash},
		"remove with hash": {Action{Kind: ActionRemove, Member: "b", CredHash: hash[:]}, ErrDecode},
		"rotate with hash": {Action{Kind: ActionRotate, Member: "b", PubKey: pub("b2"), CredHash: hash[:]}, ErrDecode},
	} {
		before := s.Hash()
		// SignProposal refuses it already; a forged encoding is refused
		// by Apply.
		if _, err := SignProposal(key("a"), prop(tc.a, 5)); !errors.Is(err, tc.want) {
			t.Errorf("%s: signing: %v, want %v", name, err, tc.want)
		}
		_, _, _, err := Apply(s, forgeProposalTx(t, "a", prop(tc.a, 5)), 6)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		if s.Hash() != before {
			t.Errorf("%s: state changed", name)
		}
	}
}

// A state or proposal without credential hashes encodes as before the
// field existed: the field is optional on the wire, so journals and
// proposal IDs from before stay valid.
func TestCredHashOptionalOnTheWire(t *testing.T) {
	s := members(t, "a", "b")
	w := wireState{Version: stateVersion, ChainID: s.ChainID, ProposalTTL: s.ProposalTTL, MaxPendingPerMember: s.MaxPendingPerMember,
		Pending: []wirePending{}, Closed: []wireClosed{}}
	type oldMember struct {
		Name   string
		PubKey []byte
		Power  uint64
	}
	type oldState struct {
		Version             uint8
		ChainID             string
		ProposalTTL         uint64
		MaxPendingPerMember uint64
		Members             []oldMember
		Pending             []wirePending
		Closed              []wireClosed
	}
	old := oldState{w.Version, w.ChainID, w.ProposalTTL, w.MaxPendingPerMember, nil, w.Pending, w.Closed}
	for _, m := range s.Members {
		old.Members = append(old.Members, oldMember{m.Name, m.PubKey, uint64(m.Power)})
	}
	enc := mustRLP(t, &old)
	if !bytes.Equal(enc, s.Marshal()) {
		t.Fatal("a state without credential hashes encodes differently from before")
	}
}

// forgeProposalTx signs p without SignProposal's checks, as a modified
// client would.
func forgeProposalTx(t testing.TB, signer string, p Proposal) []byte {
	t.Helper()
	sig, err := key(signer).Sign(SignBytes(p.ChainID, p.ID()))
	if err != nil {
		t.Fatal(err)
	}
	tx, err := EncodeTx(&Tx{Proposal: &p, Signer: pub(signer), Signature: sig})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}
