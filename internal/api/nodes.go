package api

import "time"

// MemberRequest is the body of POST /v1/members.
type MemberRequest struct {
	Name string `json:"name"`
}

// MemberCreated is the answer to POST /v1/members: the credential appears
// here once and is never retrievable again.
type MemberCreated struct {
	Name       string    `json:"name"`
	Credential string    `json:"credential"`
	Created    time.Time `json:"created"`
}

// MemberView is a member as the administrator sees it: an element of
// GET /v1/members, and the answer to DELETE /v1/members/{name}.
type MemberView struct {
	Name      string     `json:"name"`
	Created   time.Time  `json:"created"`
	Revoked   bool       `json:"revoked"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
	Nodes     int        `json:"nodes"`
	LiveNodes int        `json:"live_nodes"`
	// PreviousCredentialUntil: the member rotated its credential and the
	// one it replaced is accepted until then.
	PreviousCredentialUntil *time.Time `json:"previous_credential_until,omitempty"`
}

// CredentialRequest is the (optional) body of
// POST /v1/members/{name}/credential. Grace is a Go duration ("24h",
// "0s"); absent, the registrar's default (24h).
type CredentialRequest struct {
	Grace *string `json:"grace,omitempty"`
}

// CredentialRotated is the answer to POST /v1/members/{name}/credential:
// the new credential, shown once, and until when the replaced one is still
// accepted (absent when it no longer is).
type CredentialRotated struct {
	Name               string     `json:"name"`
	Credential         string     `json:"credential"`
	PreviousValidUntil *time.Time `json:"previous_valid_until,omitempty"`
}

// MemberList is the answer to GET /v1/members.
type MemberList struct {
	Members []MemberView `json:"members"`
}

// RegisterRequest is the body of POST /v1/nodes.
type RegisterRequest struct {
	ENR       string  `json:"enr"`
	Role      string  `json:"role"`
	PublicENR string  `json:"public_enr,omitempty"`
	Status    *Status `json:"status,omitempty"`
}

// RenewRequest is the (optional) body of POST /v1/nodes/{id}/renew.
type RenewRequest struct {
	Status *Status `json:"status,omitempty"`
}

// NodeView is a node as one credential may see it: an element of
// GET /v1/nodes, the answer to GET /v1/nodes/{id}. For another member's
// public node only the public endpoint is filled in.
type NodeView struct {
	ID          string    `json:"id"`
	Member      string    `json:"member"`
	Role        string    `json:"role"`
	Seq         uint64    `json:"seq"`
	Enode       string    `json:"enode,omitempty"`
	ENR         string    `json:"enr,omitempty"`
	PublicSeq   uint64    `json:"public_seq,omitempty"`
	PublicEnode string    `json:"public_enode,omitempty"`
	PublicENR   string    `json:"public_enr,omitempty"`
	Live        bool      `json:"live"`
	Registered  time.Time `json:"registered"`
	Updated     time.Time `json:"updated"`
	Expires     time.Time `json:"expires"`
	Status      *Status   `json:"status,omitempty"`
	Index       uint64    `json:"index,omitempty"`
}

// NodeList is the answer to GET /v1/nodes.
type NodeList struct {
	Index uint64     `json:"index"` // the registry's index when it was read
	Nodes []NodeView `json:"nodes"`
}

// RegisterResponse is the answer to POST /v1/nodes.
type RegisterResponse struct {
	NodeView
	TTLSeconds float64 `json:"ttl_seconds"`
}

// RenewResponse is the answer to POST /v1/nodes/{id}/renew.
type RenewResponse struct {
	ID         string    `json:"id"`
	Expires    time.Time `json:"expires"`
	TTLSeconds float64   `json:"ttl_seconds"`
}
