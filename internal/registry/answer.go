package registry

import (
	"crypto/sha256"
	"encoding/hex"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/p2p/enode"
)

// PeerAnswer is one node's peer set at one index: its group's lists (see
// groupAnswer) with the node's own entry left out. It is cheap to make (no
// list is copied) and shares the group's lists and renderings, so treat it
// as read-only.
type PeerAnswer struct {
	Index uint64
	Node  string // the asking node's ID, hex; 64 zeros for a role's set
	// ETag is a strong tag of the answer, the same in every format: a hash
	// of the group's digest and the node's ID. The answer is a function of
	// the two, so any change to it changes the tag.
	ETag string

	ga                             *groupAnswer
	skipStatic, skipBoot, skipCons int // the node's own entry in ga.static, ga.boot or ga.cons; -1 if none
}

func etag(digest [sha256.Size]byte, id enode.ID) string {
	h := sha256.New()
	h.Write(digest[:])
	h.Write(id[:])
	var sum [sha256.Size]byte
	return `"` + hex.EncodeToString(h.Sum(sum[:0])[:16]) + `"`
}

// List names one list of an answer.
type List uint8

const (
	StaticList    List = iota // the static (and trusted) peers' enode URLs
	ENRList                   // the static peers' signed records, in the same order
	BootnodeList              // the bootnodes' enode URLs
	ConsensusList             // the static peers' CometBFT addresses, where their records have one
)

func (a *PeerAnswer) entries(l List) (es []entry, skip int) {
	switch l {
	case BootnodeList:
		return a.ga.boot, a.skipBoot
	case ConsensusList:
		return a.ga.cons, a.skipCons
	}
	return a.ga.static, a.skipStatic
}

// text is the element of list l that e stands for.
func (e *entry) text(l List) string {
	switch l {
	case ENRList:
		return e.enr
	case ConsensusList:
		return e.cmt
	}
	return e.enode
}

// Len is the number of elements of list l in the answer.
func (a *PeerAnswer) Len(l List) int {
	es, skip := a.entries(l)
	if skip >= 0 {
		return len(es) - 1
	}
	return len(es)
}

// Strings returns list l of the answer, freshly allocated.
func (a *PeerAnswer) Strings(l List) []string {
	es, skip := a.entries(l)
	out := make([]string, 0, a.Len(l))
	for i := range es {
		if i == skip {
			continue
		}
		out = append(out, es[i].text(l))
	}
	return out
}

// Set returns the answer in its wire form, with its lists copied out.
func (a *PeerAnswer) Set() *PeerSet {
	ps := &PeerSet{
		Index: a.Index, Node: a.Node, ETag: a.ETag,
		Static: a.Strings(StaticList), ENRs: a.Strings(ENRList), Bootnodes: a.Strings(BootnodeList),
		Consensus: a.Strings(ConsensusList),
	}
	ps.Trusted = ps.Static
	return ps
}

// An Encoding renders a list as its elements, each appended by Append, with
// Sep between two of them. A list's rendering is cached per group and
// *Encoding: declare encodings once (package variables), never per request.
type Encoding struct {
	Sep    string
	Append func(dst []byte, s string) []byte
}

type joinKey struct {
	list List
	enc  *Encoding
}

// joined is a list rendered once for a whole group: b, with element i at
// b[start[i]:end[i]].
type joined struct {
	b          []byte
	start, end []int
	// aux is a cache an encoder of the answers (gzip, in httpapi) keeps
	// with the rendering, so its work too is done once per group.
	aux atomic.Pointer[any]
}

// JoinedCut is Joined for an encoder that reuses work across the group: the
// group's whole rendering full (read-only), the range [cut0, cut1) of it
// left out of this node's answer (empty when nothing is), and a cache slot
// that lives as long as the rendering.
func (a *PeerAnswer) JoinedCut(l List, enc *Encoding) (full []byte, cut0, cut1 int, aux *atomic.Pointer[any]) {
	j := a.rendering(l, enc)
	_, skip := a.entries(l)
	head, tail := j.omit(skip)
	full = j.b[:len(j.b):len(j.b)]
	cut0 = len(head)
	cut1 = len(full) - len(tail)
	if len(head) == 0 && len(tail) == 0 {
		cut0, cut1 = 0, len(full) // the only element is left out
	}
	return full, cut0, cut1, &j.aux
}

// Joined returns list l rendered with enc, with the node's own element left
// out: the rendering is head followed by tail. Both share the group's bytes
// and must not be modified (their capacity ends where they do, so an append
// copies). The group's rendering is made by the first caller at this index.
func (a *PeerAnswer) Joined(l List, enc *Encoding) (head, tail []byte) {
	_, skip := a.entries(l)
	return a.rendering(l, enc).omit(skip)
}

// rendering is the group's rendering of list l with enc, made by the first
// caller at this index.
func (a *PeerAnswer) rendering(l List, enc *Encoding) *joined {
	ga := a.ga
	k := joinKey{l, enc}
	ga.mu.Lock()
	defer ga.mu.Unlock()
	j := ga.joined[k]
	if j == nil {
		j = join(ga, l, enc)
		ga.joined[k] = j
	}
	return j
}

func join(ga *groupAnswer, l List, enc *Encoding) *joined {
	es := ga.static
	switch l {
	case BootnodeList:
		es = ga.boot
	case ConsensusList:
		es = ga.cons
	}
	j := &joined{start: make([]int, len(es)), end: make([]int, len(es))}
	for i := range es {
		if i > 0 {
			j.b = append(j.b, enc.Sep...)
		}
		j.start[i] = len(j.b)
		j.b = enc.Append(j.b, es[i].text(l))
		j.end[i] = len(j.b)
	}
	return j
}

// omit returns the rendering without element k (and one separator next to
// it); k < 0 leaves everything in.
func (j *joined) omit(k int) (head, tail []byte) {
	n := len(j.start)
	switch {
	case k < 0 || k >= n:
		return j.b[:len(j.b):len(j.b)], nil
	case n == 1:
		return nil, nil
	case k < n-1:
		// Drop the element and the separator after it.
		return j.b[:j.start[k]:j.start[k]], j.b[j.start[k+1]:len(j.b):len(j.b)]
	default:
		// The last element: drop the separator before it.
		return j.b[:j.end[k-1]:j.end[k-1]], nil
	}
}
