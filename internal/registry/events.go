package registry

import "time"

// EventKind names what happened.
type EventKind string

// Event kinds. EventLeft tells those who were offered a node that it went
// without its lease ending: its member was revoked (told for each of its
// live nodes, in its role), or a live public node took another role (told
// with role public, the side the other members saw, before the "updated"
// its own member sees). Without it another member's event stream never
// said such a node went.
const (
	EventRegistered    EventKind = "registered"
	EventUpdated       EventKind = "updated"
	EventExpired       EventKind = "expired"
	EventRemoved       EventKind = "removed"
	EventLeft          EventKind = "left"   // out of the answers while its lease runs
	EventFreed         EventKind = "freed"  // the administrator released a node ID's binding
	EventPurged        EventKind = "purged" // a lapsed record deleted after the retention (Config.Retention)
	EventMemberAdded   EventKind = "member_added"
	EventMemberRevoked EventKind = "member_revoked"
)

// Event is one entry of the recent-events list.
type Event struct {
	Seq    uint64    `json:"seq"`
	Time   time.Time `json:"time"`
	Kind   EventKind `json:"kind"`
	Member string    `json:"member,omitempty"`
	Node   string    `json:"node,omitempty"`
	Role   string    `json:"role,omitempty"`

	// unlisted: the node was in no other member's answer when this
	// happened, so only its member and the administrator are told. The
	// lapse of a revoked member's node is such an event: the others were
	// told "left" at the revocation and must not be told again that it
	// went.
	unlisted bool
}

type ring struct {
	buf  []Event
	next uint64
}

func newRing(n int) *ring { return &ring{buf: make([]Event, n)} }

// event must be called with mu held for writing.
func (r *Registry) event(e Event) {
	e.Seq = r.events.next + 1
	e.Time = r.cfg.Now().UTC()
	r.events.buf[r.events.next%uint64(len(r.events.buf))] = e
	r.events.next++
}

// Events returns the recent events after seq that p may see, oldest first.
// Another member's events are shown only for its public nodes, and only
// while they were in its answers (SightOf).
func (r *Registry) Events(p Principal, after uint64) []Event {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []Event
	n := uint64(len(r.events.buf))
	start := after
	if r.events.next > n && start < r.events.next-n {
		start = r.events.next - n
	}
	for s := start; s < r.events.next; s++ {
		e := r.events.buf[s%n]
		if SightOf(p, e.Member, e.Role, !e.unlisted) == SeeNothing {
			continue
		}
		out = append(out, e)
	}
	return out
}
