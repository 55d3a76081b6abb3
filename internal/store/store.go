// Package store declares what the registrar needs from durable storage, and
// nothing more: whole-state load at start-up and write-through of each change.
// The registry keeps the live state in memory; a store is its durable copy.
//
// Implementations: sqlite (embedded default) and, for several replicas, etcd.
// Every implementation passes the shared suite in storetest.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrUnavailable wraps any failure of the backing database, so callers can
// answer "not ready" without knowing which database it was.
var ErrUnavailable = errors.New("store unavailable")

// Member is a consortium member and the hash of its credential.
type Member struct {
	Name      string
	Hash      string // auth.Hash of the secret; the secret itself is never stored
	Created   time.Time
	Revoked   bool
	RevokedAt time.Time
	// PrevHash is the hash of the credential a rotation replaced; it is
	// accepted until PrevUntil, so the member's agents move over without
	// downtime. Empty when no rotation is in its grace period.
	PrevHash  string
	PrevUntil time.Time
	// ChainHash is the credential hash a BFT chain's vote admitted the
	// member with (empty for other members): a rotation changes Hash, not
	// ChainHash, so the chain follower tells a rotation by the member from
	// a new decision of the chain.
	ChainHash string
}

// Node is a registered node record. ENR and PublicENR are the signed texts as
// received; they are re-verified when loaded, so a tampered database row
// cannot inject an endpoint.
type Node struct {
	ID         string
	Member     string
	Role       string
	ENR        string
	PublicENR  string
	Registered time.Time
	Updated    time.Time
	Expires    time.Time
	Status     []byte // JSON reported by the agent; opaque here
	// PublicSeq is the highest sequence number of any public record the
	// node has had, kept when it changes role, so that an older public
	// record is never taken back after public -> validator -> public.
	PublicSeq uint64
	// AdminRemoved marks a record the administrator removed (Expires is
	// zero): still bound to its member, listed to nobody.
	AdminRemoved bool
}

// Legacy is an unsigned enode posted through the seed's open POST /.
type Legacy struct {
	Network string
	Enode   string
	Expires time.Time
}

// Renewal is one lease extension, written behind in batches.
type Renewal struct {
	ID      string
	Expires time.Time
	Status  []byte // nil keeps the stored status
}

// State is everything a registrar holds.
type State struct {
	AdminHash string
	Members   []Member
	Nodes     []Node
	Legacy    []Legacy
	// Alive is the last time the registrar recorded that it was up (see
	// Heartbeat); zero when the store keeps no such time.
	Alive time.Time
}

// Heartbeat is implemented by a store that one registrar owns (SQLite): the
// registrar records, every second, that it is up, so that after a crash it
// knows which leases ended while it was up (they stay lapsed) and which
// ended while it was down (their agents could not renew: they get a grace).
type Heartbeat interface {
	SetAlive(ctx context.Context, t time.Time) error
}

// NodeBatcher is a Store that writes several node records in one
// transaction: all or none (the registry's group commit).
type NodeBatcher interface {
	PutNodes(ctx context.Context, ns []Node) error
}

// Store is the durable copy of the registry. Methods return once the change
// is durable (survives kill -9 of the process).
type Store interface {
	Load(ctx context.Context) (*State, error)
	SetAdminHash(ctx context.Context, hash string) error
	PutMember(ctx context.Context, m Member) error
	PutNode(ctx context.Context, n Node) error
	// Renew applies lease extensions in one batch; unknown IDs are skipped.
	Renew(ctx context.Context, rs []Renewal) error
	DeleteNode(ctx context.Context, id string) error
	PutLegacy(ctx context.Context, l Legacy) error
	DeleteLegacy(ctx context.Context, network, enode string) error
	Ping(ctx context.Context) error
	Close() error
}
