package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/consortium/consortium/internal/noderecord"
	"github.com/consortium/consortium/internal/store"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Registration is a node's request to be listed.
type Registration struct {
	Role      string
	ENR       string
	PublicENR string
	Status    *Status
}

// Register verifies and stores a node record. created reports a first
// registration. The node is bound to p's member from then on.
func (r *Registry) Register(ctx context.Context, p Principal, reg Registration) (v NodeView, created bool, err error) {
	// Checked again in its batch (stage), after any revocation before it.
	if err := r.admitted(p); err != nil {
		return NodeView{}, false, err
	}
	if p.Admin {
		return NodeView{}, false, fmt.Errorf("%w: the administrator does not own nodes; register with a member credential", ErrForbidden)
	}
	pair, err := noderecord.Verify(reg.Role, reg.ENR, reg.PublicENR)
	if err != nil {
		r.stats.RegistrationsRefused.Add(1)
		return NodeView{}, false, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if pair.Public != nil {
		if err := noderecord.CheckPublic(pair.Public.IP, r.cfg.AllowLoopbackEndpoints); err != nil {
			r.stats.RegistrationsRefused.Add(1)
			return NodeView{}, false, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	if reg.Status != nil {
		if err := reg.Status.Validate(); err != nil {
			return NodeView{}, false, err
		}
		if err := checkProofs(reg.Status, pair.Node.ID.String()); err != nil {
			return NodeView{}, false, err
		}
	}
	return r.submit(ctx, &regJob{p: p, pair: pair, reg: reg})
}

// A registration is written through to the store before it is answered.
// Registrations that arrive together are written in one store transaction
// (group commit, issue 19: each was its own SQLite transaction, serialised
// under writeMu, 2.5-3.9k/s): the first caller to find no batch running
// leads, taking every job queued meanwhile; when its batch is done it hands
// the lead to the first job queued since.

// regJob is one verified registration waiting for its batch.
type regJob struct {
	p    Principal
	pair *noderecord.Pair
	reg  Registration
	lead chan struct{} // closed to make a waiting job the leader
	done chan struct{} // closed when the result is in
	// the result
	v       NodeView
	created bool
	err     error
	// staged by the batch: the node to write, whether it was known
	n     *node
	known bool
}

// maxBatch bounds one transaction, so a burst does not hold writeMu long.
const maxBatch = 256

func (r *Registry) submit(ctx context.Context, j *regJob) (NodeView, bool, error) {
	j.lead, j.done = make(chan struct{}), make(chan struct{})
	r.regMu.Lock()
	r.regQueue = append(r.regQueue, j)
	leader := !r.regBusy
	r.regBusy = true
	r.regMu.Unlock()
	if !leader {
		select {
		case <-j.done:
			return j.v, j.created, j.err
		case <-j.lead:
		}
	}
	for {
		r.regMu.Lock()
		n := min(len(r.regQueue), maxBatch)
		batch := r.regQueue[:n:n]
		r.regQueue = r.regQueue[n:]
		r.regMu.Unlock()
		r.commitBatch(context.WithoutCancel(ctx), batch)
		select {
		case <-j.done:
		default:
			continue // our job was not in that batch (more than maxBatch queued)
		}
		break
	}
	r.regMu.Lock()
	if len(r.regQueue) > 0 {
		close(r.regQueue[0].lead)
	} else {
		r.regBusy = false
	}
	r.regMu.Unlock()
	return j.v, j.created, j.err
}

// commitBatch registers the jobs in order. A job whose status makes claims
// is committed on its own, after the ones before it: its claims are checked
// against the nodes as they then are.
func (r *Registry) commitBatch(ctx context.Context, jobs []*regJob) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.stats.RegistrationBatches.Add(1)
	var seg []*regJob
	for _, j := range jobs {
		if j.reg.Status != nil {
			r.commitSegment(ctx, seg)
			seg = seg[:0]
			r.commitSegment(ctx, []*regJob{j})
			continue
		}
		seg = append(seg, j)
	}
	r.commitSegment(ctx, seg)
}

// commitSegment stages each job against memory and the jobs before it,
// writes the staged nodes in one store transaction and applies them. Must
// be called with writeMu held.
func (r *Registry) commitSegment(ctx context.Context, jobs []*regJob) {
	if len(jobs) == 0 {
		return
	}
	now := r.cfg.Now()
	staged := map[enode.ID]*node{}
	var writes []store.Node
	var ok []*regJob
	for _, j := range jobs {
		j.err = r.stage(j, staged, now)
		if j.err != nil {
			r.stats.RegistrationsRefused.Add(1)
			close(j.done)
			continue
		}
		staged[j.n.id] = j.n
		writes = append(writes, j.n.toStore())
		ok = append(ok, j)
	}
	if len(ok) == 0 {
		return
	}
	var err error
	if b, isBatch := r.store.(store.NodeBatcher); isBatch && len(writes) > 1 {
		err = b.PutNodes(ctx, writes)
	} else {
		for _, sn := range writes {
			if err = r.store.PutNode(ctx, sn); err != nil {
				break
			}
		}
	}
	if err != nil {
		for _, j := range ok {
			j.err = err
			close(j.done)
		}
		return
	}
	for _, sn := range writes {
		r.expect(nodeKey(sn.ID), nodeFP(sn))
	}
	r.mu.Lock()
	for _, j := range ok {
		var prev *Status
		if old := r.nodes[j.n.id]; old != nil && old.live(now) {
			st := old.status // old is changed in place
			prev = &st
		}
		n, _ := r.changeNode(j.n.id, nodeChange{op: opPut, rec: j.n, status: statusTake}, now)
		r.noteStatus(n.member, prev, &n.status)
		j.v = r.view(SeeAll, n, now) // the registering member's own node
		j.v.Index = r.index
		j.created = !j.known
	}
	r.mu.Unlock()
	for _, j := range ok {
		r.forgetRenewal(j.n.idHex)
		r.stats.Registrations.Add(1)
		close(j.done)
	}
}

// stage checks job j against the node it replaces (in staged, from an
// earlier job of the batch, or in memory) and sets j.n. Must be called with
// writeMu held.
func (r *Registry) stage(j *regJob, staged map[enode.ID]*node, now time.Time) error {
	p, pair, reg := j.p, j.pair, j.reg
	r.mu.RLock()
	if err := r.admittedLocked(p); err != nil {
		r.mu.RUnlock()
		return err
	}
	old := staged[pair.Node.ID]
	if old == nil {
		old = r.nodes[pair.Node.ID]
	}
	var oldCopy node
	if old != nil {
		oldCopy = *old
	}
	var claimErr error
	if reg.Status != nil && (old == nil || oldCopy.member == p.Name) {
		claimErr = r.checkClaims(p.Name, reg.Status)
	}
	r.mu.RUnlock()
	if claimErr != nil {
		return claimErr
	}
	n := &node{
		id: pair.Node.ID, idHex: pair.Node.ID.String(), member: p.Name, role: pair.Role,
		rec: slimRecord(pair.Node), pub: slimRecord(pair.Public), enode: pair.Node.Enode(),
		registered: now.UTC(), updated: now.UTC(), expires: now.Add(r.cfg.TTL),
	}
	if pair.Public != nil {
		n.pubEnode = pair.Public.Enode()
		n.pubSeq = pair.Public.Seq
	}
	if reg.Status != nil {
		n.status = *reg.Status
	}
	if old != nil {
		if oldCopy.member != p.Name {
			return ErrNotOwner
		}
		if err := checkSeq(&oldCopy, n); err != nil {
			return err
		}
		n.registered = oldCopy.registered
		n.pubSeq = max(n.pubSeq, oldCopy.pubSeq)
		if reg.Status == nil {
			n.status = oldCopy.status
		}
		if sameRecord(&oldCopy, n) {
			n.updated = oldCopy.updated
		}
	}
	j.n, j.known = n, old != nil
	return nil
}

// errNotRegistered is the one answer for a node that does not exist and for
// another member's node the caller may not see or touch: the same error,
// word for word, so no route tells the two apart.
func errNotRegistered(id string) error {
	return fmt.Errorf("%w: node %s is not registered", ErrNotFound, id)
}

func pubENR(n *node) string {
	if n.pub == nil {
		return ""
	}
	return n.pub.ENR
}

// checkSeq enforces growing sequence numbers: an identical record is a
// repeat (accepted, it renews), a changed one needs a higher seq.
func checkSeq(old, n *node) error {
	if old.expires.IsZero() && !old.hidden && n.rec.Seq <= old.rec.Seq {
		// Removed by its member: only a newer record brings it back.
		// (The administrator's removal ends the lease, not the record:
		// the node's agent may register the same record again.)
		return fmt.Errorf("%w: node was removed; register a record with seq above %d", ErrStaleSeq, old.rec.Seq)
	}
	switch {
	case n.rec.Seq < old.rec.Seq:
		return fmt.Errorf("%w: node record seq %d is below the registered %d", ErrStaleSeq, n.rec.Seq, old.rec.Seq)
	case n.rec.Seq == old.rec.Seq && (n.rec.ENR != old.rec.ENR || n.role != old.role):
		return fmt.Errorf("%w: node record seq %d is already registered with other content", ErrStaleSeq, n.rec.Seq)
	}
	if n.pub != nil && old.pub == nil && n.pub.Seq <= old.pubSeq {
		// The node was public before and changed role since: its
		// public record is gone, its highest seq is not. Without the
		// record an equal seq cannot be told from a replay.
		return fmt.Errorf("%w: public record seq %d is not above %d, the highest of the node's earlier public records", ErrStaleSeq, n.pub.Seq, old.pubSeq)
	}
	if n.pub != nil && old.pub != nil {
		switch {
		case n.pub.Seq < old.pub.Seq:
			return fmt.Errorf("%w: public record seq %d is below the registered %d", ErrStaleSeq, n.pub.Seq, old.pub.Seq)
		case n.pub.Seq == old.pub.Seq && n.pub.ENR != old.pub.ENR:
			return fmt.Errorf("%w: public record seq %d is already registered with other content", ErrStaleSeq, n.pub.Seq)
		}
	}
	return nil
}

func (n *node) toStore() store.Node {
	sn := store.Node{
		ID: n.idHex, Member: n.member, Role: string(n.role), ENR: n.rec.ENR,
		Registered: n.registered, Updated: n.updated, Expires: n.expires,
		PublicSeq: n.pubSeq, AdminRemoved: n.hidden,
	}
	if n.pub != nil {
		sn.PublicENR = n.pub.ENR
	}
	sn.Status, _ = json.Marshal(n.status)
	return sn
}

// Remove takes a node out of every answer. The record stays, bound to its
// member with its last seq, whoever removes it, so a copy of the record
// never changes owner. Removed by its member, only a record with a higher
// seq brings it back. Removed by the administrator, it is listed to nobody
// and its member may register it again (the same record too), as after a
// lapsed lease. The administrator releases the binding with Free.
func (r *Registry) Remove(ctx context.Context, p Principal, id string) error {
	nid, err := noderecord.ParseID(id)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	now := r.cfg.Now()
	r.mu.RLock()
	admErr := r.admittedLocked(p)
	n, ok := r.nodes[nid]
	var cp node
	if ok {
		cp = *n
	}
	r.mu.RUnlock()
	if admErr != nil {
		return admErr
	}
	if !ok || (!p.Admin && cp.member != p.Name) {
		return errNotRegistered(id)
	}
	if cp.expires.IsZero() {
		return nil // removed already; a second removal changes nothing
	}
	cp.expires, cp.hidden = time.Time{}, p.Admin
	sn := cp.toStore()
	if err := r.store.PutNode(ctx, sn); err != nil {
		return err
	}
	r.expect(nodeKey(cp.idHex), nodeFP(sn))
	r.forgetRenewal(cp.idHex)
	r.mu.Lock()
	// From the node as it is now: a renewal may have run since the copy.
	r.changeNode(nid, nodeChange{op: opPut, rec: &cp, status: statusTake}, now)
	r.mu.Unlock()
	return nil
}

// Free deletes a node's record and releases the binding of its ID to its
// member (administrator only): any member may then register that key, with
// any seq, as a first registration. It is how an ID whose key moved to
// another member, or whose member was revoked, is given up.
func (r *Registry) Free(ctx context.Context, p Principal, id string) error {
	if err := r.admitted(p); err != nil {
		return err
	}
	if !p.Admin {
		return ErrForbidden
	}
	nid, err := noderecord.ParseID(id)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	now := r.cfg.Now()
	r.mu.RLock()
	n, ok := r.nodes[nid]
	r.mu.RUnlock()
	if !ok {
		return errNotRegistered(id)
	}
	if err := r.store.DeleteNode(ctx, n.idHex); err != nil {
		return err
	}
	r.expect(nodeKey(n.idHex), fpDeleted)
	r.forgetRenewal(n.idHex)
	r.mu.Lock()
	r.changeNode(nid, nodeChange{op: opDelete, cause: EventFreed}, now)
	r.mu.Unlock()
	return nil
}

// Nodes lists the nodes p may see (SightOf): the administrator sees all; a
// member sees its own nodes in full and other members' listed public nodes
// by public endpoint only.
func (r *Registry) Nodes(p Principal) []NodeView {
	now := r.cfg.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]NodeView, 0, len(r.nodes))
	for _, n := range r.nodes {
		if s := r.sight(p, n, now); s != SeeNothing {
			out = append(out, r.view(s, n, now))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Member != out[j].Member {
			return out[i].Member < out[j].Member
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Node returns one node as p may see it.
func (r *Registry) Node(p Principal, id string) (NodeView, error) {
	nid, err := noderecord.ParseID(id)
	if err != nil {
		return NodeView{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	now := r.cfg.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	n, ok := r.nodes[nid]
	if !ok {
		return NodeView{}, errNotRegistered(id)
	}
	s := r.sight(p, n, now)
	if s == SeeNothing {
		return NodeView{}, errNotRegistered(id)
	}
	return r.view(s, n, now), nil
}

// sight is SightOf for a node in memory; a node the administrator removed
// is listed to nobody. Must be called with mu held.
func (r *Registry) sight(p Principal, n *node, now time.Time) Sight {
	if n.hidden {
		return SeeNothing
	}
	return SightOf(p, n.member, string(n.role), n.live(now) && !r.revoked(n.member))
}

// view is node n as seen with s (not SeeNothing). Must be called with mu
// held.
func (r *Registry) view(s Sight, n *node, now time.Time) NodeView {
	v := NodeView{
		ID: n.idHex, Member: n.member, Role: string(n.role), Live: n.live(now) && !r.revoked(n.member),
		Registered: n.registered, Updated: n.updated, Expires: n.expires,
	}
	if n.pub != nil {
		v.PublicSeq, v.PublicEnode, v.PublicENR = n.pub.Seq, n.pubEnode, n.pub.ENR
	}
	st := n.status
	if s == SeeAll {
		v.Seq, v.Enode, v.ENR = n.rec.Seq, n.enode, n.rec.ENR
	} else {
		st.PeerIDs = nil // another member's peers would reveal its private nodes' IDs
	}
	v.Status = &st
	return v
}
