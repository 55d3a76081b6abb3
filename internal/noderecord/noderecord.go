// Package noderecord verifies the signed node records (EIP-778 ENRs) that
// nodes hand to the registrar. It is pure: no clock, no store, no network.
//
// The registrar trusts nothing in a record but what its signature proves: the
// node ID is derived from the signing key, so nobody can register a node whose
// key they do not hold.
package noderecord

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Role is a node's job inside its member.
type Role string

// The roles of the topology (README.md, docs/architecture.md).
const (
	RoleBootnode  Role = "bootnode"
	RoleValidator Role = "validator"
	RoleTx        Role = "tx"
	RolePublic    Role = "public"
)

// MaxENRLen bounds the text form of a record; EIP-778 caps the RLP at 300
// bytes, which is at most 405 base64 characters plus the "enr:" prefix.
const MaxENRLen = 420

var (
	ErrBadRole      = errors.New(`role must be one of "bootnode", "validator", "tx", "public"`)
	ErrMalformedENR = errors.New("malformed ENR")
	ErrNoEndpoint   = errors.New("ENR has no IP address and TCP or UDP port")
	ErrIDMismatch   = errors.New("public record is signed by another key than the node record")
	ErrBadID        = errors.New("node ID must be 64 lower-case hex characters")
	ErrPublicENR    = errors.New("a public_enr is required for role public and refused for other roles")
	// ErrAddress refuses an address no node can be dialled at, or one that
	// would send other members' nodes to their own host (see CheckPublic).
	ErrAddress = errors.New("endpoint address refused")
)

// ParseRole validates a role name exactly (no case folding: odd case is refused).
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleBootnode, RoleValidator, RoleTx, RolePublic:
		return r, nil
	}
	return "", fmt.Errorf("%w, got %q", ErrBadRole, s)
}

// Record is a verified node record.
type Record struct {
	ID   enode.ID
	Seq  uint64
	IP   net.IP
	TCP  int
	UDP  int
	ENR  string // canonical text form, "enr:..."
	Node *enode.Node
	// ConsensusID (40 lower-case hex characters) and ConsensusPort are the
	// record's "cmt" entry: its CometBFT node ID and P2P port; empty and 0
	// when the node runs no consensus process.
	ConsensusID   string
	ConsensusPort int
}

// Enode is the record's enode URL, as geth's admin_addPeer and --bootnodes take it.
func (r *Record) Enode() string { return r.Node.URLv4() }

// Parse decodes an "enr:" string, checks its v4 signature and requires an
// endpoint. The error never echoes the input back (it may be huge or binary).
func Parse(text string) (*Record, error) {
	if len(text) > MaxENRLen {
		return nil, fmt.Errorf("%w: longer than %d characters", ErrMalformedENR, MaxENRLen)
	}
	if !strings.HasPrefix(text, "enr:") {
		return nil, fmt.Errorf("%w: must start with \"enr:\"", ErrMalformedENR)
	}
	n, err := enode.Parse(enode.ValidSchemes, text)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrMalformedENR, sanitize(err.Error()))
	}
	if n.IP() == nil || n.IP().IsUnspecified() || (n.TCP() == 0 && n.UDP() == 0) {
		return nil, ErrNoEndpoint
	}
	if ip := n.IP(); ip.IsMulticast() || ip.Equal(net.IPv4bcast) {
		return nil, fmt.Errorf("%w: %s is a multicast or broadcast address", ErrAddress, ip)
	}
	rec := &Record{ID: n.ID(), Seq: n.Seq(), IP: n.IP(), TCP: n.TCP(), UDP: n.UDP(), ENR: n.String(), Node: n}
	c, ok, err := consensusOf(n.Record())
	if err != nil {
		return nil, err
	}
	if ok {
		rec.ConsensusID, rec.ConsensusPort = hex.EncodeToString(c.ID), int(c.Port)
	}
	return rec, nil
}

// ParseID validates a node ID given in a URL or body: exactly 64 lower-case
// hex characters, so one node has one spelling everywhere.
func ParseID(s string) (enode.ID, error) {
	var id enode.ID
	if len(s) != 64 || strings.ToLower(s) != s {
		return id, ErrBadID
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, ErrBadID
	}
	return id, nil
}

// Pair is a verified registration: the node record and, for a public node,
// the record of its public endpoint signed by the same key.
type Pair struct {
	Role   Role
	Node   *Record
	Public *Record
}

// Verify checks a registration as a whole.
func Verify(role, enrText, publicENR string) (*Pair, error) {
	r, err := ParseRole(role)
	if err != nil {
		return nil, err
	}
	node, err := Parse(enrText)
	if err != nil {
		return nil, err
	}
	p := &Pair{Role: r, Node: node}
	if (r == RolePublic) != (publicENR != "") {
		return nil, ErrPublicENR
	}
	if publicENR != "" {
		pub, err := Parse(publicENR)
		if err != nil {
			return nil, fmt.Errorf("public_enr: %w", err)
		}
		if pub.ID != node.ID {
			return nil, ErrIDMismatch
		}
		if pub.TCP == 0 {
			// Other members' public nodes dial it: without a TCP port
			// they would be handed "ip:0".
			return nil, fmt.Errorf("public_enr: %w: a public record needs a TCP port", ErrNoEndpoint)
		}
		p.Public = pub
	}
	if r == RoleBootnode && node.UDP == 0 {
		return nil, fmt.Errorf("%w: a bootnode needs a UDP port", ErrNoEndpoint)
	}
	if r != RoleBootnode && node.TCP == 0 {
		return nil, fmt.Errorf("%w: a %s node needs a TCP port", ErrNoEndpoint, r)
	}
	return p, nil
}

// CheckPublic applies the rule for the address of a public record, the one
// other members' nodes dial: never loopback or link-local (unicast; the
// multicast ranges and the broadcast address are refused for every record
// by Parse), since it would send them to their own host or to its cloud
// metadata service (169.254.169.254). allowLoopback lets a test network on
// one host (the devnet on 127.0.0.1) use loopback addresses. Private ranges
// (RFC 1918, RFC 4193) stay allowed: members often link their networks over
// VPNs or cloud peering.
func CheckPublic(ip net.IP, allowLoopback bool) error {
	switch {
	case ip.IsLoopback() && !allowLoopback:
		return fmt.Errorf("%w: public endpoint %s is a loopback address (a test network on one host needs the registrar's --allow-loopback-endpoints)", ErrAddress, ip)
	case ip.IsLinkLocalUnicast():
		return fmt.Errorf("%w: public endpoint %s is a link-local address", ErrAddress, ip)
	case ip.IsUnspecified() || ip.IsMulticast() || ip.Equal(net.IPv4bcast):
		return fmt.Errorf("%w: public endpoint %s cannot be dialled", ErrAddress, ip)
	}
	return nil
}

func sanitize(s string) string {
	if len(s) > 120 {
		s = s[:120]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
