package registry

import (
	"crypto/sha256"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Deltas: a watcher that holds its answer at an earlier index (its ETag)
// can be told what changed since, a few hundred bytes, instead of its whole
// set again (issue 19: one change to 1,000 watchers of an ~1,000-peer set
// sent 156 MB). The registry keeps the last pastAnswers answers of each
// group; the difference between two of them is computed once per pair and
// shared by every node of the group, each leaving out its own entry.

// pastAnswers is how many earlier answers of each group are kept. A watcher
// further behind gets its full set.
const pastAnswers = 4

// pastAnswer is a group's answer at one index, its lists only.
type pastAnswer struct {
	index              uint64
	digest             [sha256.Size]byte
	static, boot, cons []entry
}

// remember records ga, just built at index, as the newest answer of group k.
func (r *Registry) remember(k answerKey, index uint64, ga *groupAnswer) {
	pa := &pastAnswer{index: index, digest: ga.digest, static: ga.static, boot: ga.boot, cons: ga.cons}
	r.pastMu.Lock()
	defer r.pastMu.Unlock()
	h := r.past[k]
	for _, o := range h {
		if o.digest == pa.digest {
			return // the same lists: the older index serves as well
		}
	}
	h = append(h, pa)
	if len(h) > pastAnswers {
		h = append(h[:0:0], h[len(h)-pastAnswers:]...)
	}
	r.past[k] = h
}

// groupDelta is what changed in a group's lists between two answers.
type groupDelta struct {
	since                   uint64
	staticAdd, staticRemove []entry
	bootAdd, bootRemove     []entry
	consAdd, consRemove     []entry
}

// Delta returns what changed in a since the answer whose ETag the caller
// holds (held, one tag), when the registry still has that answer; ok is
// false otherwise (the caller then sends the full answer).
func (r *Registry) Delta(a *PeerAnswer, held string) (*PeerDelta, bool) {
	nid := enode.HexID(a.Node)
	r.pastMu.Lock()
	var old *pastAnswer
	for _, pa := range r.past[a.ga.key] {
		if etag(pa.digest, nid) == held {
			old = pa
			break
		}
	}
	r.pastMu.Unlock()
	if old == nil || old.digest == a.ga.digest {
		return nil, false
	}
	ga := a.ga
	ga.mu.Lock()
	gd := ga.deltas[old.digest]
	if gd == nil {
		gd = &groupDelta{since: old.index}
		gd.staticAdd, gd.staticRemove = diff(old.static, ga.static, func(e *entry) string { return e.enode })
		gd.bootAdd, gd.bootRemove = diff(old.boot, ga.boot, func(e *entry) string { return e.enode })
		gd.consAdd, gd.consRemove = diff(old.cons, ga.cons, func(e *entry) string { return e.cmt })
		ga.deltas[old.digest] = gd
	}
	ga.mu.Unlock()
	own := func(es []entry, text func(*entry) string) []string {
		out := make([]string, 0, len(es))
		for i := range es {
			if es[i].id != nid {
				out = append(out, text(&es[i]))
			}
		}
		return out
	}
	en := func(e *entry) string { return e.enode }
	cm := func(e *entry) string { return e.cmt }
	return &PeerDelta{
		Index: a.Index, Since: gd.since, Node: a.Node, ETag: a.ETag,
		StaticAdd: own(gd.staticAdd, en), StaticRemove: own(gd.staticRemove, en),
		BootnodesAdd: own(gd.bootAdd, en), BootnodesRemove: own(gd.bootRemove, en),
		ConsensusAdd: own(gd.consAdd, cm), ConsensusRemove: own(gd.consRemove, cm),
	}, true
}

// diff returns the entries of cur not in old and of old not in cur, by
// key, each in its list's order.
func diff(old, cur []entry, key func(*entry) string) (add, remove []entry) {
	in := make(map[string]struct{}, len(old))
	for i := range old {
		in[key(&old[i])] = struct{}{}
	}
	now := make(map[string]struct{}, len(cur))
	for i := range cur {
		k := key(&cur[i])
		now[k] = struct{}{}
		if _, ok := in[k]; !ok {
			add = append(add, cur[i])
		}
	}
	for i := range old {
		if _, ok := now[key(&old[i])]; !ok {
			remove = append(remove, old[i])
		}
	}
	return add, remove
}
