package etcd

import (
	"context"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/consortium/consortium/internal/store"
)

// maxTxnBytes keeps a renewal transaction well under etcd's default
// --max-request-bytes (1.5 MiB), whatever size the agents' status reports.
const maxTxnBytes = 1 << 20

// txn commits ops in one transaction. Every write of this store is one
// (an unconditional put or delete repeats harmlessly), so retries are safe.
func (s *Store) txn(ctx context.Context, op string, ops ...clientv3.Op) error {
	return s.do(ctx, op, true, func(ctx context.Context) error {
		_, err := s.cli.Txn(ctx).Then(ops...).Commit()
		return err
	})
}

// SetAdminHash writes the administrator credential's hash.
func (s *Store) SetAdminHash(ctx context.Context, hash string) error {
	return s.txn(ctx, "set admin hash", clientv3.OpPut(s.keys.admin(), hash))
}

// PutMember creates or replaces a member (a revocation is a replacement).
func (s *Store) PutMember(ctx context.Context, m store.Member) error {
	return s.txn(ctx, "put member "+m.Name, clientv3.OpPut(s.keys.member(m.Name), encodeMember(m)))
}

// PutNode writes the record, its lease and its status in one transaction, so
// a watcher sees them together. A nil status removes a stored one, as the
// SQLite store overwrites it.
func (s *Store) PutNode(ctx context.Context, n store.Node) error {
	status := clientv3.OpDelete(s.keys.status(n.ID))
	if n.Status != nil {
		status = clientv3.OpPut(s.keys.status(n.ID), string(n.Status))
	}
	return s.txn(ctx, "put node "+n.ID,
		clientv3.OpPut(s.keys.node(n.ID), encodeNode(n)),
		clientv3.OpPut(s.keys.lease(n.ID), encodeLease(n.Expires)),
		status)
}

// DeleteNode deletes the record, its lease and its status in one
// transaction; deleting an unknown node does nothing.
func (s *Store) DeleteNode(ctx context.Context, id string) error {
	return s.txn(ctx, "delete node "+id,
		clientv3.OpDelete(s.keys.node(id)),
		clientv3.OpDelete(s.keys.lease(id)),
		clientv3.OpDelete(s.keys.status(id)))
}

// Renew writes leases/<id> (and status/<id> when the renewal carries one)
// of every renewal whose node exists. Each renewal is a nested transaction
// guarded by "nodes/<id> exists", so a node deleted by another replica in the
// meantime is not given a lease back, in one round trip. A batch is split
// into transactions that fit etcd's --max-txn-ops; it is not atomic as a
// whole, which write-behind renewals need not be. A zero Expires leaves the
// lease unchanged (watchers read a Renewal's zero Expires that way).
func (s *Store) Renew(ctx context.Context, rs []store.Renewal) error {
	// etcd refuses a transaction that writes a key twice: renewals of one
	// ID are merged into the first's place, as if applied in order.
	merged := make([]store.Renewal, 0, len(rs))
	at := make(map[string]int, len(rs))
	for _, r := range rs {
		i, ok := at[r.ID]
		if !ok {
			at[r.ID] = len(merged)
			merged = append(merged, r)
			continue
		}
		if !r.Expires.IsZero() {
			merged[i].Expires = r.Expires
		}
		if r.Status != nil {
			merged[i].Status = r.Status
		}
	}
	// etcd gives a nested transaction what its parent leaves of the limit,
	// level by level: a renewal's guard, its status put and its inner
	// "only later" transaction need four.
	perTxn := max(1, s.cfg.MaxTxnOps-4)
	var ops []clientv3.Op
	size := 0
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		err := s.txn(ctx, fmt.Sprintf("renew %d leases", len(ops)), ops...)
		ops, size = ops[:0], 0
		return err
	}
	for _, r := range merged {
		var then []clientv3.Op
		if !r.Expires.IsZero() {
			// Only ever extend: a replica's late batch must not shorten a
			// lease another replica extended since. Lease values are
			// zero-padded milliseconds, so they compare as strings.
			v := encodeLease(r.Expires)
			later := clientv3.Compare(clientv3.Value(s.keys.lease(r.ID)), "<", v)
			then = append(then, clientv3.OpTxn([]clientv3.Cmp{later}, []clientv3.Op{clientv3.OpPut(s.keys.lease(r.ID), v)}, nil))
		}
		if r.Status != nil {
			then = append(then, clientv3.OpPut(s.keys.status(r.ID), string(r.Status)))
		}
		if len(then) == 0 {
			continue
		}
		n := 3*(len(s.keys.prefix)+len(r.ID)+16) + len(r.Status)
		if len(ops) == perTxn || (len(ops) > 0 && size+n > maxTxnBytes) {
			if err := flush(); err != nil {
				return err
			}
		}
		// Renew only a node that exists and that its member has not
		// removed (lease "0"): a replica that has not seen the removal yet
		// must not bring the node back.
		exists := clientv3.Compare(clientv3.CreateRevision(s.keys.node(r.ID)), ">", 0)
		notRemoved := clientv3.Compare(clientv3.Value(s.keys.lease(r.ID)), "!=", encodeLease(time.Time{}))
		ops = append(ops, clientv3.OpTxn([]clientv3.Cmp{exists, notRemoved}, then, nil))
		size += n
	}
	return flush()
}

// PutLegacy creates or replaces an open-POST enode.
func (s *Store) PutLegacy(ctx context.Context, l store.Legacy) error {
	return s.txn(ctx, "put legacy enode", clientv3.OpPut(s.keys.legacy(l.Network, l.Enode), encodeLegacy(l)))
}

// DeleteLegacy deletes an open-POST enode.
func (s *Store) DeleteLegacy(ctx context.Context, network, enode string) error {
	return s.txn(ctx, "delete legacy enode", clientv3.OpDelete(s.keys.legacy(network, enode)))
}

// InitIfEmpty writes the administrator hash and the members in one
// transaction guarded by "admin does not exist", so that of several replicas
// starting together exactly one initialises the consortium. All of it must
// fit one transaction: at most MaxTxnOps-1 members.
//
// It is retried only after errors that mean the transaction was not applied:
// after an ambiguous one (a timeout), a retry would find the admin written
// by the first attempt and wrongly report done=false.
func (s *Store) InitIfEmpty(ctx context.Context, adminHash string, members []store.Member) (bool, error) {
	ops := []clientv3.Op{clientv3.OpPut(s.keys.admin(), adminHash)}
	seen := map[string]int{}
	for _, m := range members {
		if i, ok := seen[m.Name]; ok {
			ops[i] = clientv3.OpPut(s.keys.member(m.Name), encodeMember(m))
			continue
		}
		seen[m.Name] = len(ops)
		ops = append(ops, clientv3.OpPut(s.keys.member(m.Name), encodeMember(m)))
	}
	if len(ops) > s.cfg.MaxTxnOps {
		return false, fmt.Errorf("etcd store: %d members do not fit one transaction (etcd's --max-txn-ops is %d): add the rest after initialisation", len(ops)-1, s.cfg.MaxTxnOps)
	}
	empty := clientv3.Compare(clientv3.CreateRevision(s.keys.admin()), "=", 0)
	var done bool
	err := s.do(ctx, "initialise", false, func(ctx context.Context) error {
		resp, err := s.cli.Txn(ctx).If(empty).Then(ops...).Commit()
		if err == nil {
			done = resp.Succeeded
		}
		return err
	})
	return done, err
}
