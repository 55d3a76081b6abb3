package consensus

import (
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cometbft/cometbft/p2p"
)

// peerSet is the exact set of CometBFT peers a node may have: the last
// SetPeers answer. It is immutable once built, so the peer filter (Query,
// on CometBFT's p2p goroutines) reads it through an atomic pointer.
type peerSet struct {
	byID map[string]string // node ID -> "id@host:port"
}

// parsePeers checks "id@host:port" addresses. Host names are kept as they
// are and resolved at each dial, so a peer whose name resolves later (a
// Kubernetes service that is not up yet) still joins the set now.
func parsePeers(addrs []string, self string) (*peerSet, error) {
	s := &peerSet{byID: make(map[string]string, len(addrs))}
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		a = strings.TrimPrefix(a, "tcp://")
		id, hostport, ok := strings.Cut(a, "@")
		if !ok {
			return nil, fmt.Errorf("%w: %q has no node ID (want id@host:port)", ErrBadPeer, a)
		}
		id = strings.ToLower(id)
		if b, err := hex.DecodeString(id); err != nil || len(b) != 20 {
			return nil, fmt.Errorf("%w: %q: node ID must be 40 hex characters", ErrBadPeer, a)
		}
		host, port, err := net.SplitHostPort(hostport)
		if err != nil || host == "" {
			return nil, fmt.Errorf("%w: %q: want id@host:port", ErrBadPeer, a)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%w: %q: bad port", ErrBadPeer, a)
		}
		if id == self {
			continue // the registrar's answer may include the node itself
		}
		s.byID[id] = id + "@" + hostport
	}
	return s, nil
}

func (s *peerSet) allows(id string) bool {
	if s == nil {
		return false
	}
	_, ok := s.byID[strings.ToLower(id)]
	return ok
}

// Peer set maintenance timing.
const (
	// peerCheckInterval is how often missing peers are redialled and
	// strangers dropped, besides right after SetPeers.
	peerCheckInterval = time.Second
	// dialHoldBack: two nodes that learn of each other at once both dial,
	// and each may drop the other's connection as a duplicate. The node
	// with the higher ID waits this long before dialling a missing peer.
	dialHoldBack = 2 * time.Second
	// maxDialBackoff bounds the growing gap between dials of a peer that
	// stays away (down, or refusing us because we are not in its set),
	// so it is not dialled, and logged, every second. SetPeers resets it;
	// a peer that comes back dials us itself.
	maxDialBackoff = 30 * time.Second
)

// peerKeeper keeps the switch's peers equal to the set: it drops peers
// outside it and dials missing ones, again and again, since CometBFT's own
// persistent-peer redial cannot be told that the set changed.
type peerKeeper struct {
	n            *Node
	sw           *p2p.Switch
	missingSince map[string]time.Time
	nextDial     map[string]time.Time
	backoff      map[string]time.Duration
	mu           sync.Mutex
	dialing      map[string]bool
	wg           sync.WaitGroup
}

// resetBackoff makes every missing peer due for a dial now (a new set).
func (k *peerKeeper) resetBackoff() {
	clear(k.nextDial)
	clear(k.backoff)
}

func (k *peerKeeper) reconcile(now time.Time) {
	set := k.n.app.peers.Load()
	connected := map[string]bool{}
	for _, p := range k.sw.Peers().Copy() {
		id := string(p.ID())
		if !set.allows(id) {
			k.n.log.Info("consensus: disconnecting a peer outside the set", "peer", id)
			k.sw.StopPeerGracefully(p)
			continue
		}
		connected[id] = true
	}
	k.n.app.metrics.peers.Set(float64(len(connected)))
	for id := range k.missingSince {
		if connected[id] || !set.allows(id) {
			delete(k.missingSince, id)
			delete(k.nextDial, id)
			delete(k.backoff, id)
		}
	}
	for id, addr := range set.byID {
		if connected[id] {
			continue
		}
		since, ok := k.missingSince[id]
		if !ok {
			k.missingSince[id], since = now, now
		}
		if k.n.id > id && now.Sub(since) < dialHoldBack {
			continue
		}
		if now.Before(k.nextDial[id]) {
			continue
		}
		b := min(2*k.backoff[id], maxDialBackoff)
		if b == 0 {
			b = peerCheckInterval
		}
		k.backoff[id], k.nextDial[id] = b, now.Add(b)
		k.dial(id, addr)
	}
}

// dial connects to one peer in the background, at most one dial per ID.
func (k *peerKeeper) dial(id, addr string) {
	k.mu.Lock()
	if k.dialing[id] {
		k.mu.Unlock()
		return
	}
	k.dialing[id] = true
	k.mu.Unlock()
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		defer func() {
			k.mu.Lock()
			delete(k.dialing, id)
			k.mu.Unlock()
		}()
		na, err := p2p.NewNetAddressString(addr)
		if err != nil {
			k.n.log.Debug("consensus: peer address does not resolve", "peer", addr, "err", err)
			return
		}
		if k.sw.IsDialingOrExistingAddress(na) {
			return
		}
		if err := k.sw.DialPeerWithAddress(na); err != nil {
			k.n.log.Debug("consensus: dial failed", "peer", addr, "err", err)
		}
	}()
}
