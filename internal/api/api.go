// Package api is the registrar's wire contract: the request and response
// bodies of /v1, the error body and its codes, the strict parsing of a
// node's status, and geth's config.toml as the consortium writes it.
//
// Both sides use it: the server (registry, httpapi) and the clients
// (registrarclient, agent, bootnode, the CLI). It is a leaf: it imports
// nothing from this repository, so a client never pulls the server in
// (TestClientsImportNoServer keeps it so).
package api

import "errors"

// ErrInvalid is wrapped by every refusal of a value (a status out of its
// bounds, a record that does not verify); the registrar answers it with
// 400 CodeInvalid. registry.ErrInvalid is this error.
var ErrInvalid = errors.New("invalid input")

// ErrorBody is every error response of the registrar.
type ErrorBody struct {
	Error string `json:"error"` // for a person; never another member's data
	Code  string `json:"code"`  // for a program: one of the Code constants
}

// The codes of ErrorBody, stable across releases; docs/api.md, "Error
// reference", says where each arises.
const (
	CodeBadBody            = "bad_body"
	CodeBadJSON            = "bad_json"
	CodeMissingField       = "missing_field"
	CodeBadQuery           = "bad_query"
	CodeBadForm            = "bad_form"
	CodeInvalid            = "invalid"
	CodeUnauthenticated    = "unauthenticated"
	CodeRevoked            = "revoked"
	CodeForbidden          = "forbidden"
	CodeNotOwner           = "not_owner"
	CodeLegacyDisabled     = "legacy_disabled"
	CodeNotFound           = "not_found"
	CodeNoRoute            = "no_route"
	CodeMemberExists       = "member_exists"
	CodeChainGoverned      = "chain_governed"
	CodeStaleSeq           = "stale_seq"
	CodeTooLarge           = "too_large"
	CodeRateLimited        = "rate_limited"
	CodeTooManyConnections = "too_many_connections"
	CodeTooManyWatches     = "too_many_watches"
	CodeInternal           = "internal"
	CodeStoreUnavailable   = "store_unavailable"
	CodeNotReady           = "not_ready"
)
