package registry

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/store"
)

// sharedStore is a fake of a store several replicas share (etcd): one state,
// a log of committed changes, and a handle per replica that implements
// store.Store, store.Watcher and store.Initializer. It is for the registry's
// logic only; the real etcd store has its own tests. Like a real store it
// keeps times to the millisecond, so memory and echoes differ as they would.
type sharedStore struct {
	mu      sync.Mutex
	admin   string
	members map[string]store.Member
	nodes   map[string]store.Node
	legacy  map[[2]string]store.Legacy
	log     []store.Change
	wake    chan struct{} // closed and replaced when anything moves
	down    bool
}

func newSharedStore() *sharedStore {
	return &sharedStore{
		members: map[string]store.Member{},
		nodes:   map[string]store.Node{},
		legacy:  map[[2]string]store.Legacy{},
		wake:    make(chan struct{}),
	}
}

// fakeReplica is one replica's handle on a sharedStore.
type fakeReplica struct {
	s         *sharedStore
	loadedAt  int  // log position of the last Load
	delivered int  // log position delivered to the watch callback
	watching  bool // Watch is running
	held      bool // delivery paused
	lost      bool // the next delivery is a Reload
}

var (
	_ store.Store       = (*fakeReplica)(nil)
	_ store.Watcher     = (*fakeReplica)(nil)
	_ store.Initializer = (*fakeReplica)(nil)
)

func (s *sharedStore) replica() *fakeReplica { return &fakeReplica{s: s} }

// signal must be called with mu held.
func (s *sharedStore) signal() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// commit must be called with mu held.
func (s *sharedStore) commit(c store.Change) {
	c.Revision = int64(len(s.log) + 1)
	s.log = append(s.log, c)
	s.signal()
}

func ms(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return time.UnixMilli(t.UnixMilli()).UTC()
}

func (s *sharedStore) check() error {
	if s.down {
		return fmt.Errorf("%w: fake store down", store.ErrUnavailable)
	}
	return nil
}

// snapshot must be called with mu held. It lists members by name, nodes by
// ID and legacy enodes by network and enode, as the real stores load them
// (SQLite's ORDER BY, etcd's key order): storetest holds every store to it.
func (s *sharedStore) snapshot() *store.State {
	st := &store.State{AdminHash: s.admin}
	for _, m := range s.members {
		st.Members = append(st.Members, m)
	}
	for _, n := range s.nodes {
		n.Status = slices.Clone(n.Status)
		st.Nodes = append(st.Nodes, n)
	}
	for _, l := range s.legacy {
		st.Legacy = append(st.Legacy, l)
	}
	slices.SortFunc(st.Members, func(a, b store.Member) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(st.Nodes, func(a, b store.Node) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Legacy, func(a, b store.Legacy) int {
		return cmp.Or(strings.Compare(a.Network, b.Network), strings.Compare(a.Enode, b.Enode))
	})
	return st
}

func (f *fakeReplica) Load(ctx context.Context) (*store.State, error) {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return nil, err
	}
	f.loadedAt = len(s.log)
	return s.snapshot(), nil
}

func (f *fakeReplica) SetAdminHash(ctx context.Context, hash string) error {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	s.admin = hash
	s.commit(store.Change{AdminHash: hash})
	return nil
}

func (f *fakeReplica) PutMember(ctx context.Context, m store.Member) error {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	m.Created, m.RevokedAt, m.PrevUntil = ms(m.Created), ms(m.RevokedAt), ms(m.PrevUntil)
	s.members[m.Name] = m
	s.commit(store.Change{Member: &m})
	return nil
}

func (f *fakeReplica) PutNode(ctx context.Context, n store.Node) error {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	n.Registered, n.Updated, n.Expires = ms(n.Registered), ms(n.Updated), ms(n.Expires)
	n.Status = slices.Clone(n.Status)
	s.nodes[n.ID] = n
	c := n
	c.Status = slices.Clone(n.Status)
	s.commit(store.Change{Node: &c})
	return nil
}

func (f *fakeReplica) Renew(ctx context.Context, rs []store.Renewal) error {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	for _, r := range rs {
		n, ok := s.nodes[r.ID]
		if !ok {
			continue
		}
		r.Expires = ms(r.Expires)
		n.Expires = r.Expires
		if r.Status != nil {
			n.Status = slices.Clone(r.Status)
		}
		s.nodes[r.ID] = n
		r.Status = slices.Clone(r.Status)
		s.commit(store.Change{Renewal: &r})
	}
	return nil
}

func (f *fakeReplica) DeleteNode(ctx context.Context, id string) error {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if _, ok := s.nodes[id]; ok {
		// Like etcd: deleting a missing key commits nothing.
		delete(s.nodes, id)
		s.commit(store.Change{DeletedNode: id})
	}
	return nil
}

func (f *fakeReplica) PutLegacy(ctx context.Context, l store.Legacy) error {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	l.Expires = ms(l.Expires)
	s.legacy[[2]string{l.Network, l.Enode}] = l
	s.commit(store.Change{Legacy: &l})
	return nil
}

func (f *fakeReplica) DeleteLegacy(ctx context.Context, network, en string) error {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	k := [2]string{network, en}
	if l, ok := s.legacy[k]; ok {
		delete(s.legacy, k)
		s.commit(store.Change{DeletedLegacy: &l})
	}
	return nil
}

func (f *fakeReplica) Ping(ctx context.Context) error {
	f.s.mu.Lock()
	defer f.s.mu.Unlock()
	return f.s.check()
}

func (f *fakeReplica) Close() error { return nil }

func (f *fakeReplica) InitIfEmpty(ctx context.Context, adminHash string, members []store.Member) (bool, error) {
	s := f.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.check(); err != nil {
		return false, err
	}
	if s.admin != "" {
		return false, nil
	}
	s.admin = adminHash
	s.commit(store.Change{AdminHash: adminHash})
	for _, m := range members {
		m.Created, m.RevokedAt, m.PrevUntil = ms(m.Created), ms(m.RevokedAt), ms(m.PrevUntil)
		s.members[m.Name] = m
		s.commit(store.Change{Member: &m})
	}
	return true, nil
}

// Watch delivers the log from the last Load on, from this goroutine.
func (f *fakeReplica) Watch(ctx context.Context, fn func(store.Change)) error {
	s := f.s
	s.mu.Lock()
	pos := f.loadedAt
	f.delivered, f.watching = pos, true
	s.signal()
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		f.watching = false
		s.mu.Unlock()
	}()
	for {
		s.mu.Lock()
		var c *store.Change
		switch {
		case f.held:
		case f.lost:
			f.lost = false
			pos = len(s.log)
			c = &store.Change{Reload: s.snapshot()}
		case pos < len(s.log):
			cc := s.log[pos]
			pos++
			c = &cc
		}
		wake := s.wake
		s.mu.Unlock()
		if c != nil {
			fn(*c)
			s.mu.Lock()
			f.delivered = pos
			s.signal()
			s.mu.Unlock()
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		}
	}
}

// hold pauses or resumes delivery to f.
func (f *fakeReplica) hold(on bool) {
	f.s.mu.Lock()
	f.held = on
	f.s.signal()
	f.s.mu.Unlock()
}

// lose makes f's watch lose track: its next delivery is a Reload.
func (f *fakeReplica) lose() {
	f.s.mu.Lock()
	f.lost = true
	f.s.signal()
	f.s.mu.Unlock()
}

// inject commits a change to the log without touching the state, as a store
// with a corrupted or hostile writer would deliver it.
func (s *sharedStore) inject(c store.Change) {
	s.mu.Lock()
	s.commit(c)
	s.mu.Unlock()
}

func (s *sharedStore) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

func (s *sharedStore) node(id string) (store.Node, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.nodes[id]
	return n, ok
}

// sync waits until every one of fs has applied the whole log.
func (s *sharedStore) sync(t testing.TB, fs ...*fakeReplica) {
	t.Helper()
	deadline := time.NewTimer(5 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		done := true
		for _, f := range fs {
			if !f.watching || f.lost || f.delivered < len(s.log) {
				done = false
			}
		}
		wake := s.wake
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatal("replicas did not apply the shared store's changes within 5 s")
		}
	}
}
