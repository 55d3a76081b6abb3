package noderecord

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/ethereum/go-ethereum/p2p/enr"
)

// ConsensusIDLen is the length of a CometBFT node ID: the first 20 bytes of
// the SHA-256 of its ed25519 public key.
const ConsensusIDLen = 20

// ErrBadConsensus reports a malformed "cmt" entry: a record that names a
// consensus endpoint must name it whole.
var ErrBadConsensus = errors.New(`malformed "cmt" entry: want a 20-byte CometBFT node ID and a non-zero TCP port`)

// Consensus is the ENR entry "cmt": the node's CometBFT node ID and P2P port.
// It sits in the record the node signs with its node key, so one signed
// record names both of the node's peer layers; the host is the record's IP,
// so the private-endpoint rule covers the consensus address too (a public
// node's public record carries the port reachable from other members).
type Consensus struct {
	ID   []byte // ConsensusIDLen bytes
	Port uint16
}

// ENRKey implements enr.Entry.
func (Consensus) ENRKey() string { return "cmt" }

// ParseConsensusID decodes a CometBFT node ID (40 hex characters, any case).
func ParseConsensusID(s string) ([]byte, error) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ConsensusIDLen {
		return nil, fmt.Errorf("%w: node ID %q", ErrBadConsensus, clip(s))
	}
	return b, nil
}

// consensusOf reads the "cmt" entry of r, if any: ok is false when the
// record has none; err is set when it has one that is malformed.
func consensusOf(r *enr.Record) (c Consensus, ok bool, err error) {
	var raw struct {
		ID   []byte
		Port uint16
	}
	if err := r.Load(enr.WithEntry("cmt", &raw)); err != nil {
		if enr.IsNotFound(err) {
			return Consensus{}, false, nil
		}
		return Consensus{}, true, ErrBadConsensus
	}
	if len(raw.ID) != ConsensusIDLen || raw.Port == 0 {
		return Consensus{}, true, ErrBadConsensus
	}
	return Consensus{ID: raw.ID, Port: raw.Port}, true, nil
}

// ConsensusAddr is the record's CometBFT peer address, "id@ip:port", as
// CometBFT's persistent_peers and dial calls take it; "" when the record
// names no consensus endpoint.
func (r *Record) ConsensusAddr() string {
	if r.ConsensusPort == 0 {
		return ""
	}
	return r.ConsensusID + "@" + net.JoinHostPort(r.IP.String(), strconv.Itoa(r.ConsensusPort))
}

func clip(s string) string {
	if len(s) > 48 {
		s = s[:48] + "..."
	}
	return sanitize(s)
}
