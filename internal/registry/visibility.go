package registry

import "github.com/consortium/consortium/internal/noderecord"

// Sight is how much of a node a principal may see.
type Sight uint8

// Sights, from least to most.
const (
	// SeeNothing: the node is not shown at all, not even its ID.
	SeeNothing Sight = iota
	// SeePublic: the node's ID, member, role, liveness, public record and
	// endpoint and its status without peer IDs (which would name the
	// member's private nodes). Never its private endpoint or record.
	SeePublic
	// SeeAll: everything, private endpoint and peer IDs included.
	SeeAll
)

// SightOf is the registry's one rule of who may see what of a node of
// member owner with role (a role's name, as noderecord.Role spells it):
//   - the administrator sees every node in full;
//   - a member sees its own nodes in full;
//   - a member sees another member's public node by its public side only,
//     and only while listed: while the node is in the other members' peer
//     answers (its lease runs, its member is not revoked);
//   - nothing else. A member never sees another member's private endpoints,
//     nor the IDs of its validators, tx nodes or bootnodes.
//
// listed is asked of a node as it is now (the list and the one-node
// endpoints). An event is about a node as it entered, changed in or left
// the answers, so events and the dashboard's peer events pass true.
func SightOf(p Principal, owner, role string, listed bool) Sight {
	switch {
	case p.Admin || (owner == p.Name && p.Name != ""):
		return SeeAll
	case role == string(noderecord.RolePublic) && listed:
		return SeePublic
	}
	return SeeNothing
}

// admitted refuses a member's Principal whose member is revoked (or
// unknown) now, with the error Authenticate gives it: a Principal is
// taken when a request is authenticated and may be held across a
// revocation (a request in flight, a batch waiting for its turn), and a
// revoked member must change nothing from then on.
func (r *Registry) admitted(p Principal) error {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.admittedLocked(p)
}

// admittedLocked is admitted with mu held.
func (r *Registry) admittedLocked(p Principal) error {
	if p.Admin {
		return nil
	}
	m, ok := r.members[p.Name]
	switch {
	case !ok:
		return ErrUnauthenticated
	case m.Revoked:
		return ErrRevoked
	}
	return nil
}
