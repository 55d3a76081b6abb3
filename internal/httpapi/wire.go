package httpapi

import "github.com/consortium/consortium/internal/api"

// The bodies this server reads and writes are the wire contract
// (internal/api), which clients import without the server; the handlers
// keep them under these names.
type (
	ErrorBody        = api.ErrorBody
	MemberRequest    = api.MemberRequest
	MemberCreated    = api.MemberCreated
	RegisterRequest  = api.RegisterRequest
	RegisterResponse = api.RegisterResponse
	RenewRequest     = api.RenewRequest
	RenewResponse    = api.RenewResponse
)
