package dnstree

import (
	"fmt"
	"sync"

	"github.com/consortium/consortium/internal/noderecord"
	"github.com/consortium/consortium/internal/registry"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Source is the directory the trees follow. Trees reads it only from its
// own goroutine (Run) or an Update call, never while serving a query.
type Source interface {
	// Members lists the members that get a zone: every member that is not
	// revoked.
	Members() ([]string, error)
	// MemberRecords returns the signed node records member's nodes may see
	// (its own nodes by private endpoint, other members' public nodes by
	// public endpoint) and the directory's change index they were read at.
	MemberRecords(member string) (nodes []*enode.Node, version uint64, err error)
	// Changed returns a channel closed at the directory's next change.
	Changed() <-chan struct{}
}

// RegistrySource is the Source over the registry, with nothing but its
// exported API: a member's tree is the answer a new public node of that
// member would get (registry.RoleAnswer, role public), whose static list is
// the member's own live nodes by private endpoint followed by every other
// non-revoked member's live public nodes by public endpoint; its ENRList is
// those nodes' signed records. Bootnodes are left out: they speak only
// discovery, so a client that dialled one from the tree would fail.
//
// Parsing a record checks its signature, the bulk of an Update's cost
// (most records appear in every member's tree, and most survive a
// change), so parsed records are kept from one Update to the next: those
// of the previous round are reused, the rest forgotten. Members starts a
// round, as Trees.Update calls it once before the members' records.
type RegistrySource struct {
	r *registry.Registry

	mu        sync.Mutex
	cur, prev map[string]*enode.Node // by "enr:" text
}

// NewRegistrySource returns the Source over r.
func NewRegistrySource(r *registry.Registry) *RegistrySource {
	return &RegistrySource{r: r, cur: map[string]*enode.Node{}}
}

var _ Source = (*RegistrySource)(nil)

// Members implements Source.
func (s *RegistrySource) Members() ([]string, error) {
	ms, err := s.r.Members(registry.Principal{Admin: true})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		if !m.Revoked {
			out = append(out, m.Name)
		}
	}
	s.mu.Lock()
	s.prev, s.cur = s.cur, make(map[string]*enode.Node, len(s.cur))
	s.mu.Unlock()
	return out, nil
}

// MemberRecords implements Source.
func (s *RegistrySource) MemberRecords(member string) ([]*enode.Node, uint64, error) {
	a, err := s.r.RoleAnswer(registry.Principal{Name: member}, string(noderecord.RolePublic))
	if err != nil {
		return nil, 0, err
	}
	texts := a.Strings(registry.ENRList)
	nodes := make([]*enode.Node, 0, len(texts))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range texts {
		n := s.cur[t]
		if n == nil {
			n = s.prev[t]
		}
		if n == nil {
			if n, err = enode.Parse(enode.ValidSchemes, t); err != nil {
				// The registry verified the record when it took it; one
				// that no longer parses is a bug, not input to skip.
				return nil, 0, fmt.Errorf("dnstree: a record of member %s's answer does not parse: %v", member, err)
			}
		}
		s.cur[t] = n
		nodes = append(nodes, n)
	}
	return nodes, a.Index, nil
}

// Changed implements Source.
func (s *RegistrySource) Changed() <-chan struct{} { return s.r.Changed() }
