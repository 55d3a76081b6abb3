package store

import "context"

// The interfaces below are implemented by stores that several registrar
// replicas share (etcd). The registry checks for them with a type assertion;
// the SQLite store, which one process owns, implements neither.

// Change is one committed write, as a replica sees it through Watch. Exactly
// one of the pointer fields (or Reload) is set. A replica also sees its own
// writes: applying a change must be idempotent.
type Change struct {
	// Revision orders changes (etcd's mod revision). Informational.
	Revision int64

	// Node is a node record written (registered, updated, or removed by its
	// member: Expires zero). Its Expires and Status are the stored ones.
	Node *Node
	// DeletedNode is the ID of a node deleted outright (by the administrator).
	DeletedNode string
	// Renewal is a lease extension (Expires zero: unchanged) and/or a status
	// report (Status nil: unchanged) of a known node.
	Renewal *Renewal
	// Member is a member created or changed (revoked).
	Member *Member
	// AdminHash is a new administrator credential hash.
	AdminHash string
	// Legacy is an enode posted on the seed's open POST /; DeletedLegacy one
	// removed.
	Legacy        *Legacy
	DeletedLegacy *Legacy

	// Reload is the whole state, sent when the store could not deliver every
	// change since the last one (history compacted, watch lost): the replica
	// replaces its memory with it.
	Reload *State
}

// Watcher is implemented by shared stores.
type Watcher interface {
	// Watch calls fn, in commit order and from one goroutine, with every
	// change committed after the state the last Load returned, until ctx
	// ends. When it loses track it sends a Change with Reload set and goes
	// on from there. It returns ctx's error.
	Watch(ctx context.Context, fn func(Change)) error
}

// Initializer is implemented by shared stores so that replicas starting
// together initialise the consortium once.
type Initializer interface {
	// InitIfEmpty writes the administrator hash and the members in one
	// atomic step, only if no administrator hash is stored yet. done reports
	// whether this call wrote them; when it did not, nothing was written.
	InitIfEmpty(ctx context.Context, adminHash string, members []Member) (done bool, err error)
}
