package registry

import (
	"errors"

	"github.com/consortium/consortium/internal/api"
)

// Domain errors. httpapi maps each to one HTTP status; messages are written
// for the operator reading them and never carry another member's data.
var (
	ErrUnauthenticated = errors.New("missing, malformed or unknown credential")
	ErrRevoked         = errors.New("credential revoked")
	ErrForbidden       = errors.New("not allowed for this credential")
	ErrNotOwner        = errors.New("node ID is bound to another member")
	ErrNotFound        = errors.New("not found")
	ErrMemberExists    = errors.New("member already exists")
	ErrStaleSeq        = errors.New("record sequence number must grow: a changed record needs a higher seq")
	ErrInvalid         = api.ErrInvalid // a status is checked by api, with its error
	// ErrAlreadyInitialised refuses a seed for a registry that has state.
	ErrAlreadyInitialised = errors.New("registry already initialised")
	// ErrChainGoverned refuses the administrator's add or revoke of a
	// member when the members are decided on chain (chain.go).
	ErrChainGoverned = errors.New("members of this consortium are decided by the validators' vote on chain: use `consortium member propose add|remove`")
)
