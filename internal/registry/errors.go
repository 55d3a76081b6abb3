package registry

import "errors"

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
	ErrInvalid         = errors.New("invalid input")
	// ErrAlreadyInitialised refuses a seed for a registry that has state.
	ErrAlreadyInitialised = errors.New("registry already initialised")
)
