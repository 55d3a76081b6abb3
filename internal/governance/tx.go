package governance

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/cometbft/cometbft/crypto/ed25519"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/consortium/consortium/internal/auth"
)

// TxPrefix is the first byte of every governance transaction. The
// consensus app's payload transaction is an RLP list, whose first byte is
// always 0xc0 or above; 'G' (0x47) never starts one, so one byte tells the
// two apart without trying to decode either.
const TxPrefix byte = 0x47

// txVersion follows TxPrefix (inside the RLP). A node meeting another
// version refuses the transaction rather than guess at its meaning.
const txVersion = 1

// Limits. A real transaction is about 200 bytes; the bounds keep a
// malicious one from costing a validator anything.
const (
	maxTxBytes   = 4096
	maxChainID   = 50 // CometBFT's own limit on a chain ID
	MaxPower     = int64(1) << 40
	MaxMembers   = 1024
	proposalKind = 1
	voteKind     = 2
)

// Domain strings. Signing and hashing inputs start with them so a
// governance signature can never be taken for anything else the validator
// key signs. CometBFT's votes and proposals sign length-delimited protobuf:
// read that way, "consortium" is a length of 99 followed by a tag with wire
// type 7, which protobuf does not have, so the two can never coincide.
const (
	voteDomain     = "consortium governance vote v1\n"
	proposalDomain = "consortium governance proposal v1\n"
)

// ID names a proposal: SHA-256 of its canonical encoding. Two members who
// sign the same change with the same chain ID and anchor sign the same ID,
// so the second signature is simply a vote.
type ID [32]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// Short is the first 8 hex digits, as the CLI shows it.
func (id ID) Short() string { return id.String()[:8] }

// ParseID reads a full 64-digit hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("%w: proposal ID %q is not 64 hex digits", ErrUnknownProposal, s)
	}
	copy(id[:], b)
	return id, nil
}

// ActionKind is what a proposal changes.
type ActionKind uint8

const (
	ActionAdd    ActionKind = 1 // a new member with a new validator key and power
	ActionRemove ActionKind = 2 // a member and its validator leave
	ActionRotate ActionKind = 3 // a member's validator key changes, its power stays
)

func (k ActionKind) String() string {
	switch k {
	case ActionAdd:
		return "add"
	case ActionRemove:
		return "remove"
	case ActionRotate:
		return "rotate"
	}
	return fmt.Sprintf("action(%d)", uint8(k))
}

// Action is one change to the validator set. PubKey is set for add and
// rotate (the new key), Power and CredHash only for add; the other fields
// must be zero, so every change has exactly one encoding.
//
// CredHash is the SHA-256 of the new member's registrar credential secret
// (auth.Hash, 32 bytes), or empty: the registrar following the chain admits
// the member with it once the add passes. Only the hash travels: the
// secret is 32 random bytes the member keeps, so the hash on chain tells
// nobody anything they can authenticate with.
type Action struct {
	Kind     ActionKind
	Member   string
	PubKey   ed25519.PubKey
	Power    int64
	CredHash []byte
}

func (a Action) String() string {
	switch a.Kind {
	case ActionAdd:
		if len(a.CredHash) > 0 {
			return fmt.Sprintf("add member %s (validator %s, power %d, credential %x…)", a.Member, shortKey(a.PubKey), a.Power, a.CredHash[:4])
		}
		return fmt.Sprintf("add member %s (validator %s, power %d)", a.Member, shortKey(a.PubKey), a.Power)
	case ActionRemove:
		return fmt.Sprintf("remove member %s", a.Member)
	case ActionRotate:
		return fmt.Sprintf("rotate member %s's validator key to %s", a.Member, shortKey(a.PubKey))
	}
	return a.Kind.String()
}

// gerund is the change as HaltError words it.
func (a Action) gerund() string {
	switch a.Kind {
	case ActionAdd:
		return "adding " + a.Member
	case ActionRemove:
		return "removing " + a.Member
	}
	return "rotating " + a.Member + "'s key"
}

func (a Action) equal(b Action) bool {
	return a.Kind == b.Kind && a.Member == b.Member && bytes.Equal(a.PubKey, b.PubKey) && a.Power == b.Power &&
		bytes.Equal(a.CredHash, b.CredHash)
}

// check is the shape of an action, independent of any state.
func (a Action) check() error {
	if err := auth.ValidName(a.Member); err != nil {
		return fmt.Errorf("%w: %v", ErrBadName, err)
	}
	if a.Kind != ActionAdd && len(a.CredHash) != 0 {
		return fmt.Errorf("%w: only an add carries a credential hash", ErrDecode)
	}
	switch a.Kind {
	case ActionAdd:
		if a.Power < 1 || a.Power > MaxPower {
			return fmt.Errorf("%w: %d, want 1..%d", ErrBadPower, a.Power, MaxPower)
		}
		if len(a.CredHash) != 0 && len(a.CredHash) != sha256.Size {
			return fmt.Errorf("%w: %d bytes, want %d (SHA-256)", ErrBadCredHash, len(a.CredHash), sha256.Size)
		}
	case ActionRemove:
		if len(a.PubKey) != 0 || a.Power != 0 {
			return fmt.Errorf("%w: remove carries no key and no power", ErrDecode)
		}
		return nil
	case ActionRotate:
		if a.Power != 0 {
			return fmt.Errorf("%w: rotate keeps the member's power and carries none", ErrDecode)
		}
	default:
		return fmt.Errorf("%w: unknown action %d", ErrDecode, a.Kind)
	}
	if len(a.PubKey) != ed25519.PubKeySize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrBadKey, len(a.PubKey), ed25519.PubKeySize)
	}
	return nil
}

// Proposal is a change the members vote on. Anchor is a recent height (the
// CLI takes the chain's latest): the proposal may be included from that
// height on and expires at Anchor + TTL. Anchoring the expiry in the signed
// bytes is what makes an old proposal unreplayable: once expired, the same
// bytes can never be valid again.
type Proposal struct {
	ChainID string
	Anchor  uint64
	Action  Action
}

type wireProposal struct {
	ChainID string
	Anchor  uint64
	Kind    uint8
	Member  string
	PubKey  []byte
	Power   uint64
	// CredHash is optional so that a proposal without one encodes (and
	// hashes to an ID) exactly as before the field existed.
	CredHash []byte `rlp:"optional"`
}

func (p Proposal) wire() *wireProposal {
	return &wireProposal{ChainID: p.ChainID, Anchor: p.Anchor, Kind: uint8(p.Action.Kind),
		Member: p.Action.Member, PubKey: []byte(p.Action.PubKey), Power: uint64(p.Action.Power),
		CredHash: p.Action.CredHash}
}

func (w *wireProposal) proposal() *Proposal {
	p := &Proposal{ChainID: w.ChainID, Anchor: w.Anchor, Action: Action{Kind: ActionKind(w.Kind), Member: w.Member}}
	if len(w.PubKey) > 0 {
		p.Action.PubKey = ed25519.PubKey(bytes.Clone(w.PubKey))
	}
	if len(w.CredHash) > 0 {
		p.Action.CredHash = bytes.Clone(w.CredHash)
	}
	if w.Power <= uint64(MaxPower) {
		p.Action.Power = int64(w.Power)
	} else {
		p.Action.Power = -1 // refused by check; never wraps into a valid power
	}
	return p
}

func (p Proposal) check() error {
	if err := checkChainID(p.ChainID); err != nil {
		return err
	}
	return p.Action.check()
}

// ID is SHA-256 over the domain and the canonical encoding.
func (p Proposal) ID() ID {
	enc, err := rlp.EncodeToBytes(p.wire())
	if err != nil {
		panic(err) // strings, bytes and integers always encode
	}
	return ID(sha256.Sum256(append([]byte(proposalDomain), enc...)))
}

// Vote is a member's signature on a pending proposal.
type Vote struct {
	ChainID    string
	ProposalID ID
}

type wireVote struct {
	ChainID    string
	ProposalID []byte
}

// Tx is a governance transaction: a proposal (which counts as its
// proposer's vote) or a vote, signed by a current validator key. Exactly
// one of Proposal and Vote is set.
type Tx struct {
	Proposal  *Proposal
	Vote      *Vote
	Signer    ed25519.PubKey
	Signature []byte
}

// ChainID is the chain the transaction was signed for.
func (t *Tx) ChainID() string {
	if t.Proposal != nil {
		return t.Proposal.ChainID
	}
	return t.Vote.ChainID
}

// ProposalID is the proposal the signature is on.
func (t *Tx) ProposalID() ID {
	if t.Proposal != nil {
		return t.Proposal.ID()
	}
	return t.Vote.ProposalID
}

// SignBytes is what a validator key signs for a vote on id, and for a
// proposal (whose ID already commits to the chain ID and the anchor). The
// chain ID is repeated in clear so a signature made for one chain cannot
// verify on another even if the ID scheme changes.
func SignBytes(chainID string, id ID) []byte {
	enc, err := rlp.EncodeToBytes([]any{chainID, id[:]})
	if err != nil {
		panic(err)
	}
	return append([]byte(voteDomain), enc...)
}

// IsTx reports whether an ABCI transaction is governance's (by its first
// byte); anything else belongs to the consensus app.
func IsTx(b []byte) bool { return len(b) > 0 && b[0] == TxPrefix }

type wireTx struct {
	Version   uint8
	Kind      uint8
	Body      rlp.RawValue
	Signer    []byte
	Signature []byte
}

// EncodeTx is the ABCI transaction carrying t.
func EncodeTx(t *Tx) ([]byte, error) {
	w := wireTx{Version: txVersion, Signer: []byte(t.Signer), Signature: t.Signature}
	var err error
	switch {
	case t.Proposal != nil && t.Vote == nil:
		w.Kind = proposalKind
		w.Body, err = rlp.EncodeToBytes(t.Proposal.wire())
	case t.Vote != nil && t.Proposal == nil:
		w.Kind = voteKind
		w.Body, err = rlp.EncodeToBytes(&wireVote{ChainID: t.Vote.ChainID, ProposalID: t.Vote.ProposalID[:]})
	default:
		return nil, fmt.Errorf("%w: a transaction carries exactly one proposal or vote", ErrDecode)
	}
	if err != nil {
		return nil, err
	}
	enc, err := rlp.EncodeToBytes(&w)
	if err != nil {
		return nil, err
	}
	return append([]byte{TxPrefix}, enc...), nil
}

// DecodeTx parses a governance transaction. It never panics (the bytes
// come from any client of any node's mempool: FuzzDecodeTx) and it accepts
// only the one canonical encoding of a well-formed transaction, so equal
// transactions are equal bytes. It does not verify the signature or look
// at any state: that is Apply's job.
func DecodeTx(b []byte) (*Tx, error) {
	if !IsTx(b) {
		return nil, fmt.Errorf("%w: does not start with 0x%02x", ErrDecode, TxPrefix)
	}
	if len(b) > maxTxBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrDecode, len(b), maxTxBytes)
	}
	var w wireTx
	if err := rlp.DecodeBytes(b[1:], &w); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if w.Version != txVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrDecode, w.Version, txVersion)
	}
	t := &Tx{Signer: ed25519.PubKey(bytes.Clone(w.Signer)), Signature: bytes.Clone(w.Signature)}
	switch w.Kind {
	case proposalKind:
		var wp wireProposal
		if err := rlp.DecodeBytes(w.Body, &wp); err != nil {
			return nil, fmt.Errorf("%w: proposal: %v", ErrDecode, err)
		}
		t.Proposal = wp.proposal()
		if err := t.Proposal.check(); err != nil {
			return nil, err
		}
	case voteKind:
		var wv wireVote
		if err := rlp.DecodeBytes(w.Body, &wv); err != nil {
			return nil, fmt.Errorf("%w: vote: %v", ErrDecode, err)
		}
		if err := checkChainID(wv.ChainID); err != nil {
			return nil, err
		}
		if len(wv.ProposalID) != len(ID{}) {
			return nil, fmt.Errorf("%w: proposal ID of %d bytes", ErrDecode, len(wv.ProposalID))
		}
		t.Vote = &Vote{ChainID: wv.ChainID, ProposalID: ID(wv.ProposalID)}
	default:
		return nil, fmt.Errorf("%w: kind %d", ErrDecode, w.Kind)
	}
	if len(t.Signer) != ed25519.PubKeySize {
		return nil, fmt.Errorf("%w: signer key of %d bytes", ErrBadKey, len(t.Signer))
	}
	if len(t.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature of %d bytes", ErrBadSignature, len(t.Signature))
	}
	// RLP is canonical for these types, but a round trip is the proof:
	// a transaction has exactly one encoding, so its hash names it.
	again, err := EncodeTx(t)
	if err != nil || !bytes.Equal(again, b) {
		return nil, fmt.Errorf("%w: not in canonical form", ErrDecode)
	}
	return t, nil
}

func checkChainID(id string) error {
	if id == "" || len(id) > maxChainID {
		return fmt.Errorf("%w: chain ID of %d bytes, want 1..%d", ErrDecode, len(id), maxChainID)
	}
	return nil
}

func shortKey(k ed25519.PubKey) string {
	if len(k) < 4 {
		return hex.EncodeToString(k)
	}
	return hex.EncodeToString(k[:4]) + "…"
}
