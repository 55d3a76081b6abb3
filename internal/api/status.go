package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Status is what an agent reports with a registration or a renewal.
type Status struct {
	Client  string   `json:"client,omitempty"`
	Head    uint64   `json:"head"`
	Peers   int      `json:"peers"`
	Syncing bool     `json:"syncing"`
	PeerIDs []string `json:"peer_ids,omitempty"` // connected peers' node IDs, for the topology view
	// HeadSigner is the Clique signer of the head block, Coinbase the
	// node's own etherbase: together they tell which member sealed it.
	HeadSigner string `json:"head_signer,omitempty"`
	Coinbase   string `json:"coinbase,omitempty"`
	// Consensus is the node's consensus process's view (BFT consortia).
	Consensus *ConsensusStatus `json:"consensus,omitempty"`
	// Proofs an agent may send (the registry checks them in claims.go);
	// they are checked and dropped, and the flags below say what they proved.
	// HeadHeader is the head block's header, RLP, 0x-hex: its Clique seal
	// proves head_signer sealed block head.
	HeadHeader string `json:"head_header,omitempty"`
	// CoinbaseSig is the coinbase key's signature (eth_sign) of
	// CoinbaseMessage, 0x-hex.
	CoinbaseSig string `json:"coinbase_sig,omitempty"`
	// Set by the registrar only: head and head_signer were proven by a
	// Clique seal; coinbase by its key's signature. A claim without its
	// flag is the node's own word.
	SealChecked     bool `json:"seal_checked,omitempty"`
	CoinbaseChecked bool `json:"coinbase_checked,omitempty"`
}

// ConsensusStatus is what a node's consensus process (CometBFT) reports
// with its renewal: where the chain stands as that node sees it. Like the
// rest of Status it is self-reported; the dashboard says so.
type ConsensusStatus struct {
	// Height is the last final (committed) height, Round the round of the
	// height in progress.
	Height int64 `json:"height"`
	Round  int32 `json:"round"`
	// Proposer is the validator address (40 hex characters) that proposed
	// the block at Height.
	Proposer string `json:"proposer,omitempty"`
	// Validator is this node's own validator address; empty on a full node.
	Validator string `json:"validator,omitempty"`
	// Validators is the validator set, each with whether its signature is
	// in the last commit.
	Validators []ValidatorVote `json:"validators,omitempty"`
	// BlockMillis is the time between the last two final blocks.
	BlockMillis int64 `json:"block_ms,omitempty"`
}

// ValidatorVote is one validator of the set and its part in the last commit.
type ValidatorVote struct {
	Address string `json:"address"`
	// Name is the validator's name in the chain's genesis or the change that
	// added it: its member's name.
	Name   string `json:"name,omitempty"`
	Power  int64  `json:"power"`
	Signed bool   `json:"signed"`
}

// Bounds of a status; the registrar refuses a status beyond them.
const (
	// MaxPeerIDs bounds Status.PeerIDs; geth's own default max is 50 peers.
	MaxPeerIDs = 256
	// MaxValidators bounds ConsensusStatus.Validators.
	MaxValidators = 256
	// MaxHeaderHex bounds Status.HeadHeader: a Clique header is about 600
	// bytes, 1,200 hex characters.
	MaxHeaderHex = 4096
	// MaxClient bounds Status.Client.
	MaxClient = 200
)

// CoinbaseMessage is what Status.CoinbaseSig signs for node id (64 hex).
func CoinbaseMessage(id string) []byte { return []byte("consortium node " + id) }

// ParseStatus decodes a status strictly: unknown fields and trailing data
// are refused, and each field is bounded (Validate). Errors wrap ErrInvalid.
func ParseStatus(b []byte) (Status, error) {
	var s Status
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Status{}, fmt.Errorf("%w: status: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Status{}, fmt.Errorf("%w: status: trailing data", ErrInvalid)
	}
	return s, s.Validate()
}

// Validate checks a status's bounds and forms (not its proofs, which need
// the node's ID and the chain: registry/claims.go). Errors wrap ErrInvalid.
func (s Status) Validate() error {
	if len(s.Client) > MaxClient {
		return fmt.Errorf("%w: status.client longer than %d characters", ErrInvalid, MaxClient)
	}
	if s.Peers < 0 {
		return fmt.Errorf("%w: status.peers is negative", ErrInvalid)
	}
	if len(s.PeerIDs) > MaxPeerIDs {
		return fmt.Errorf("%w: status.peer_ids has more than %d entries", ErrInvalid, MaxPeerIDs)
	}
	for _, a := range []string{s.HeadSigner, s.Coinbase} {
		if a != "" && (len(a) != 42 || a[:2] != "0x") {
			return fmt.Errorf("%w: status addresses must be 0x-prefixed 20-byte hex", ErrInvalid)
		}
	}
	if len(s.HeadHeader) > MaxHeaderHex || len(s.CoinbaseSig) > 2+2*65 {
		return fmt.Errorf("%w: status.head_header or status.coinbase_sig too long", ErrInvalid)
	}
	if err := s.Consensus.Validate(); err != nil {
		return err
	}
	for _, id := range s.PeerIDs {
		if len(id) != 64 {
			return fmt.Errorf("%w: status.peer_ids entries must be 64-character node IDs", ErrInvalid)
		}
	}
	return nil
}

// Validate checks a consensus status's bounds; a nil one is valid (a node
// of a Clique consortium). Errors wrap ErrInvalid.
func (c *ConsensusStatus) Validate() error {
	if c == nil {
		return nil
	}
	if c.Height < 0 || c.Round < 0 || c.BlockMillis < 0 {
		return fmt.Errorf("%w: status.consensus: negative number", ErrInvalid)
	}
	if len(c.Validators) > MaxValidators {
		return fmt.Errorf("%w: status.consensus.validators has more than %d entries", ErrInvalid, MaxValidators)
	}
	addrs := []string{c.Proposer, c.Validator}
	for _, v := range c.Validators {
		if v.Address == "" || len(v.Name) > 64 || v.Power < 0 {
			return fmt.Errorf("%w: status.consensus.validators: an entry needs an address, a name of at most 64 characters and a power >= 0", ErrInvalid)
		}
		addrs = append(addrs, v.Address)
	}
	for _, a := range addrs {
		if a != "" && !validatorAddr(a) {
			return fmt.Errorf("%w: status.consensus addresses must be 40 hex characters", ErrInvalid)
		}
	}
	return nil
}

// validatorAddr reports whether a is a CometBFT validator address: 20 bytes
// in upper- or lower-case hex.
func validatorAddr(a string) bool {
	if len(a) != 40 {
		return false
	}
	return strings.Trim(strings.ToLower(a), "0123456789abcdef") == ""
}
