package registry

import "github.com/consortium/consortium/internal/api"

// The registry's answers in their wire form, and the status an agent
// reports, are the wire contract (internal/api), which clients import
// without the server; the registry keeps them under these names.
type (
	NodeView        = api.NodeView
	MemberView      = api.MemberView
	PeerSet         = api.PeerSet
	PeerDelta       = api.PeerDelta
	Status          = api.Status
	ConsensusStatus = api.ConsensusStatus
	ValidatorVote   = api.ValidatorVote
)

// Bounds of a status (see api).
const (
	MaxPeerIDs    = api.MaxPeerIDs
	MaxValidators = api.MaxValidators
)

// ParseStatus decodes a status strictly (api.ParseStatus); errors wrap
// ErrInvalid.
func ParseStatus(b []byte) (Status, error) { return api.ParseStatus(b) }
