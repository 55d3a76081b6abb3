package etcd

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consortium/consortium/internal/store"
)

// loadPage is the number of keys read per request of a Load; the pages are
// read at one revision, so together they are one consistent snapshot.
const loadPage = 2000

// Load reads the whole state at one revision, which Watch then starts after.
func (s *Store) Load(ctx context.Context) (*store.State, error) {
	st, rev, err := s.load(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.loadRev = rev
	s.mu.Unlock()
	return st, nil
}

// load reads every key under the prefix at one revision and returns the
// state and that revision.
func (s *Store) load(ctx context.Context) (*store.State, int64, error) {
	var kvs []*mvccpb.KeyValue
	var rev int64
	end := clientv3.GetPrefixRangeEnd(s.keys.prefix)
	err := s.do(ctx, "load", true, func(ctx context.Context) error {
		kvs, rev = nil, 0
		key := s.keys.prefix
		for {
			opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(loadPage)}
			if rev != 0 {
				opts = append(opts, clientv3.WithRev(rev))
			}
			resp, err := s.cli.Get(ctx, key, opts...)
			if errors.Is(rpctypes.Error(err), rpctypes.ErrCompacted) {
				// Compacted between two pages: start again at the head.
				kvs, rev, key = nil, 0, s.keys.prefix
				continue
			}
			if err != nil {
				return err
			}
			if rev == 0 {
				rev = resp.Header.Revision
			}
			kvs = append(kvs, resp.Kvs...)
			if !resp.More || len(resp.Kvs) == 0 {
				return nil
			}
			key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		}
	})
	if err != nil {
		return nil, 0, err
	}
	return s.assemble(kvs), rev, nil
}

// assemble builds the state from the keys, joining each node with its lease
// and status. A value this store cannot read is skipped with a warning:
// one bad key must not keep every replica from starting.
func (s *Store) assemble(kvs []*mvccpb.KeyValue) *store.State {
	st := &store.State{}
	leases := map[string]time.Time{}
	status := map[string][]byte{}
	for _, kv := range kvs {
		kind, a, _, ok := s.keys.parse(string(kv.Key))
		if !ok {
			s.log.Warn("etcd store: ignoring an unknown key", "key", string(kv.Key))
			continue
		}
		var err error
		switch kind {
		case kindAdmin:
			st.AdminHash = string(kv.Value)
		case kindMember:
			var m store.Member
			if m, err = decodeMember(kv.Value); err == nil {
				st.Members = append(st.Members, m)
			}
		case kindNode:
			var n store.Node
			if n, err = decodeNode(kv.Value); err == nil {
				st.Nodes = append(st.Nodes, n)
			}
		case kindLease:
			leases[a], err = decodeLease(kv.Value)
		case kindStatus:
			status[a] = append([]byte{}, kv.Value...)
		case kindLegacy:
			var l store.Legacy
			if l, err = decodeLegacy(kv.Value); err == nil {
				st.Legacy = append(st.Legacy, l)
			}
		}
		if err != nil {
			s.log.Warn("etcd store: ignoring an unreadable value", "key", string(kv.Key), "err", err)
		}
	}
	for i := range st.Nodes {
		n := &st.Nodes[i]
		n.Expires, n.Status = leases[n.ID], status[n.ID]
	}
	slices.SortFunc(st.Members, func(x, y store.Member) int { return cmp.Compare(x.Name, y.Name) })
	slices.SortFunc(st.Nodes, func(x, y store.Node) int { return cmp.Compare(x.ID, y.ID) })
	slices.SortFunc(st.Legacy, func(x, y store.Legacy) int {
		return cmp.Or(cmp.Compare(x.Network, y.Network), cmp.Compare(x.Enode, y.Enode))
	})
	return st
}

// Watch calls fn with every change committed after the last Load (or, with
// no Load before, first with a Reload of the whole state), in commit order,
// from this goroutine. etcd's client buffers what fn has not taken yet, so
// a slow fn delays changes but loses none. When the watch fails (history
// compacted past it, the member lost its leader, the connection broke), Watch
// reloads the whole state, hands it to fn as a Reload, and watches on from
// its revision. It returns ctx's error when ctx ends, or an error wrapping
// ErrClosed once the store is closed.
func (s *Store) Watch(ctx context.Context, fn func(store.Change)) error {
	s.mu.Lock()
	rev := s.loadRev
	s.mu.Unlock()
	if rev == 0 {
		st, r, err := s.reload(ctx)
		if err != nil {
			return err
		}
		fn(store.Change{Revision: r, Reload: st})
		rev = r
	}
	for {
		err := s.watchFrom(ctx, &rev, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if s.isClosed() {
			return fmt.Errorf("%w: etcd watch: %w", store.ErrUnavailable, ErrClosed)
		}
		s.log.Warn("etcd watch lost; reloading the whole state", "revision", rev, "err", err)
		st, r, err := s.reload(ctx)
		if err != nil {
			return err
		}
		fn(store.Change{Revision: r, Reload: st})
		rev = r
	}
}

// watchFrom delivers changes after *rev, advancing *rev, until the watch
// ends; it returns why.
func (s *Store) watchFrom(ctx context.Context, rev *int64, fn func(store.Change)) error {
	// A member that loses its leader cancels the watch instead of keeping
	// it open on stale data; the reload then goes through another member.
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	wch := s.cli.Watch(wctx, s.keys.prefix, clientv3.WithPrefix(), clientv3.WithRev(*rev+1))
	for resp := range wch {
		if err := resp.Err(); err != nil {
			return err
		}
		if resp.Canceled {
			return errors.New("watch canceled by etcd")
		}
		// etcd never splits one revision's events (one transaction) across
		// responses; a response may hold several revisions.
		evs := resp.Events
		for len(evs) > 0 {
			r := evs[0].Kv.ModRevision
			n := 1
			for n < len(evs) && evs[n].Kv.ModRevision == r {
				n++
			}
			for _, c := range s.changes(evs[:n]) {
				fn(c)
			}
			*rev = r
			evs = evs[n:]
		}
	}
	return errors.New("watch closed")
}

// reload loads the whole state, retrying with a growing pause until it
// succeeds, ctx ends or the store is closed.
func (s *Store) reload(ctx context.Context) (*store.State, int64, error) {
	pause := retryPause
	for {
		st, rev, err := s.load(ctx)
		if err == nil {
			return st, rev, nil
		}
		if errors.Is(err, ErrClosed) {
			return nil, 0, err
		}
		s.log.Warn("etcd store: reloading the state failed; retrying", "err", err, "retry_in", pause)
		t := time.NewTimer(pause)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, 0, ctx.Err()
		case <-s.closed:
			t.Stop()
			return nil, 0, fmt.Errorf("%w: etcd watch: %w", store.ErrUnavailable, ErrClosed)
		}
		pause = min(2*pause, 2*time.Second)
	}
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// nodeEvents gathers one transaction's events about one node.
type nodeEvents struct {
	id        string
	node      *store.Node
	deleted   bool
	expires   time.Time
	hasLease  bool
	hasStatus bool
	status    []byte // nil when deleted
}

// changes maps the events of one revision (one transaction) to changes, in
// the order of the events. The node, lease and status keys of one node are
// merged: PutNode's transaction becomes one Change.Node with its stored
// expiry and status, a renewal's one Change.Renewal, DeleteNode's one
// Change.DeletedNode. PutNode always writes the lease and either writes or
// deletes the status in the same transaction, so a Node change needs no
// other read.
func (s *Store) changes(evs []*clientv3.Event) []store.Change {
	type item struct {
		c  store.Change
		ne *nodeEvents // a node's events, merged once all are seen
	}
	var items []item
	byID := map[string]*nodeEvents{}
	for _, ev := range evs {
		key := string(ev.Kv.Key)
		kind, a, b, ok := s.keys.parse(key)
		if !ok {
			continue
		}
		put := ev.Type == mvccpb.PUT
		c := store.Change{Revision: ev.Kv.ModRevision}
		var err error
		switch kind {
		case kindAdmin:
			if put {
				c.AdminHash = string(ev.Kv.Value)
				items = append(items, item{c: c})
			}
		case kindMember:
			if put {
				var m store.Member
				if m, err = decodeMember(ev.Kv.Value); err == nil {
					c.Member = &m
					items = append(items, item{c: c})
				}
			}
		case kindLegacy:
			if put {
				var l store.Legacy
				if l, err = decodeLegacy(ev.Kv.Value); err == nil {
					c.Legacy = &l
					items = append(items, item{c: c})
				}
			} else {
				c.DeletedLegacy = &store.Legacy{Network: a, Enode: b}
				items = append(items, item{c: c})
			}
		case kindNode, kindLease, kindStatus:
			ne := byID[a]
			if ne == nil {
				ne = &nodeEvents{id: a}
				byID[a] = ne
				items = append(items, item{c: c, ne: ne})
			}
			err = ne.add(kind, put, ev.Kv.Value)
		}
		if err != nil {
			s.log.Warn("etcd store: ignoring an unreadable value", "key", key, "err", err)
		}
	}
	out := make([]store.Change, 0, len(items))
	for _, it := range items {
		if it.ne != nil && !it.ne.merge(&it.c) {
			continue
		}
		out = append(out, it.c)
	}
	return out
}

func (ne *nodeEvents) add(kind int, put bool, v []byte) error {
	var err error
	switch {
	case kind == kindNode && put:
		var n store.Node
		if n, err = decodeNode(v); err == nil {
			ne.node = &n
		}
	case kind == kindNode:
		ne.deleted = true
	case kind == kindLease && put:
		ne.expires, err = decodeLease(v)
		ne.hasLease = err == nil
	case kind == kindStatus:
		ne.hasStatus = true
		ne.status = nil
		if put {
			ne.status = append([]byte{}, v...)
		}
	}
	return err
}

// merge sets c to the node's change; false when there is none (a lease or
// status removed on its own).
func (ne *nodeEvents) merge(c *store.Change) bool {
	switch {
	case ne.deleted:
		c.DeletedNode = ne.id
	case ne.node != nil:
		n := *ne.node
		n.Expires, n.Status = ne.expires, ne.status
		c.Node = &n
	case ne.hasLease || ne.status != nil:
		c.Renewal = &store.Renewal{ID: ne.id, Expires: ne.expires, Status: ne.status}
	default:
		return false
	}
	return true
}
