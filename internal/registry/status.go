package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Status is what an agent reports with each renewal.
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
	// Proofs an agent may send (claims.go); they are checked and dropped,
	// and the flags below say what they proved.
	// HeadHeader is the head block's header, RLP, 0x-hex: its Clique seal
	// proves head_signer sealed block head.
	HeadHeader string `json:"head_header,omitempty"`
	// CoinbaseSig is the coinbase key's signature (eth_sign) of
	// "consortium node <node ID>", 0x-hex.
	CoinbaseSig string `json:"coinbase_sig,omitempty"`
	// Set by the registrar only: head and head_signer were proven by a
	// Clique seal; coinbase by its key's signature. A claim without its
	// flag is the node's own word.
	SealChecked     bool `json:"seal_checked,omitempty"`
	CoinbaseChecked bool `json:"coinbase_checked,omitempty"`
}

// MaxPeerIDs bounds PeerIDs; geth's own default max is 50 peers.
const MaxPeerIDs = 256

// ParseStatus decodes a status strictly: unknown fields and trailing data
// are refused, and each field is bounded.
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
	return s, s.validate()
}

func (s Status) validate() error {
	if len(s.Client) > 200 {
		return fmt.Errorf("%w: status.client longer than 200 characters", ErrInvalid)
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
	if len(s.HeadHeader) > maxHeaderHex || len(s.CoinbaseSig) > 2+2*65 {
		return fmt.Errorf("%w: status.head_header or status.coinbase_sig too long", ErrInvalid)
	}
	if err := s.Consensus.validate(); err != nil {
		return err
	}
	for _, id := range s.PeerIDs {
		if len(id) != 64 {
			return fmt.Errorf("%w: status.peer_ids entries must be 64-character node IDs", ErrInvalid)
		}
	}
	return nil
}
