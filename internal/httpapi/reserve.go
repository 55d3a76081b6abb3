package httpapi

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Reserved accept capacity for members. A flood of anonymous connections
// reaches a member's new connection before its request does: in the
// kernel's accept queue, where every connection waits its turn, and at the
// connection cap. So the registrar remembers the client addresses that
// authenticated recently (memberAddrs), and a new connection from one of
// them
//   - is accepted while the accept queue is long, when connections from
//     other addresses are closed unread to drain it (backlog*.go), and
//   - is admitted at the connection cap into a reserve of its own, which
//     anonymous connections cannot fill, and is not closed to make room
//     before its request is read.
// An address is only a hint: the connection still authenticates like any
// other, and one that does not is answered as anonymous (one request,
// then closed). A member's pending connections in the reserve are capped,
// so one member cannot take the reserve from the others.

const (
	// memberAddrTTL is how long an address stays remembered after its
	// last authenticated request. Far longer than a lease (30 s by
	// default): an agent whose connection broke, or that restarted, gets
	// back in while its node's lease still runs.
	memberAddrTTL = 10 * time.Minute
	// maxMemberAddrs bounds the addresses remembered (about 100 bytes
	// each), maxAddrsPerMember those of one credential (IPv6 gives a
	// member many).
	maxMemberAddrs    = 65536
	maxAddrsPerMember = 4096
)

// reserveFor is the room at the connection cap for new connections from
// members' addresses, beyond max: 1/16 of it, at least 16.
func reserveFor(maxConns int) int { return max(16, maxConns/16) }

// reservePerMemberFor caps one member's pending connections in a reserve
// of r.
func reservePerMemberFor(r int) int { return max(4, r/4) }

// memberAddr is one remembered address.
type memberAddr struct {
	member string
	seen   atomic.Int64 // unix ns of the last authenticated request from it
}

// touch refreshes a's expiry; lock-free, as every authenticated request
// calls it.
func (a *memberAddr) touch(now time.Time) { a.seen.Store(now.UnixNano()) }

func (a *memberAddr) live(now time.Time) bool {
	return now.UnixNano()-a.seen.Load() < int64(memberAddrTTL)
}

// memberAddrs is the bounded set of addresses members authenticated from.
type memberAddrs struct {
	mu       sync.Mutex
	byIP     map[string]*memberAddr
	perOwner map[string]int
}

func newMemberAddrs() *memberAddrs {
	return &memberAddrs{byIP: map[string]*memberAddr{}, perOwner: map[string]int{}}
}

// note remembers that member authenticated from ip. It returns the entry
// to touch on later requests, nil when the set is full of live addresses
// (the connection is served as it is; only its next ones get no reserve).
func (s *memberAddrs) note(ip, member string, now time.Time) *memberAddr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byIP[ip]; a != nil {
		if a.member != member {
			// The address changed hands (a NAT shared by two members,
			// an address reassigned): the last to authenticate has it.
			if s.perOwner[a.member]--; s.perOwner[a.member] <= 0 {
				delete(s.perOwner, a.member)
			}
			s.perOwner[member]++
			a = &memberAddr{member: member}
			s.byIP[ip] = a
		}
		a.touch(now)
		return a
	}
	if len(s.byIP) >= maxMemberAddrs || s.perOwner[member] >= maxAddrsPerMember {
		s.sweepLocked(now)
		if len(s.byIP) >= maxMemberAddrs || s.perOwner[member] >= maxAddrsPerMember {
			return nil
		}
	}
	a := &memberAddr{member: member}
	a.touch(now)
	s.byIP[ip] = a
	s.perOwner[member]++
	return a
}

// member is the member that authenticated from ip within memberAddrTTL,
// or "".
func (s *memberAddrs) member(ip string, now time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.byIP[ip]; a != nil && a.live(now) {
		return a.member
	}
	return ""
}

// sweepLocked forgets the expired addresses. Must be called with mu held;
// it runs only when the set is full, so at most once per expiry of the
// addresses that filled it.
func (s *memberAddrs) sweepLocked(now time.Time) {
	for ip, a := range s.byIP {
		if !a.live(now) {
			delete(s.byIP, ip)
			if s.perOwner[a.member]--; s.perOwner[a.member] <= 0 {
				delete(s.perOwner, a.member)
			}
		}
	}
}

// sheddingListener state: whether the accept queue is long, looked at
// every backlogEvery accepts. Past backlogHigh queued connections the
// listener closes connections from addresses not remembered as members'
// until the queue is down to backlogLow.
const (
	backlogEvery = 4
	backlogHigh  = 128
	backlogLow   = 16
)

type backlogGauge struct {
	ln       net.Listener
	n        int
	shedding bool
}

// long reports whether new connections from unknown addresses are to be
// closed unread: the kernel's accept queue (where a member's connection
// waits behind a flood's) is long. Called by the accept loop only.
func (g *backlogGauge) long() bool {
	g.n++
	if g.n%backlogEvery != 0 && !g.shedding {
		return false
	}
	q, ok := acceptQueue(g.ln)
	switch {
	case !ok:
		g.shedding = false
	case q >= backlogHigh:
		g.shedding = true
	case q <= backlogLow:
		g.shedding = false
	}
	return g.shedding
}
