package registry

import (
	"fmt"

	"github.com/consortium/consortium/internal/store"
)

// A replica sees its own writes again through the watch, after it has already
// applied them to memory. Applied on their own they are no-ops (see apply),
// except when this replica wrote the same key again in between: the echo of
// the first write would then take memory back to it until the echo of the
// second arrives, waking waiters twice with an answer already stale. So every
// write to a shared store is remembered until its echo comes back, and an
// echo with a later write of ours still to come is skipped.
//
// Echoes are matched by content, not by revision (the Store interface does
// not return one), so another replica's write of the very same content counts
// as ours. A change that matches none of our writes is applied as it is,
// even while echoes of ours are due: a stale entry can then never hide
// another replica's write. An entry whose echo never comes (a delete of a
// key another replica deleted first makes no event) is dropped when a later
// echo of the same key matches, on a Reload, or when the key holds
// maxEchoes. The price: a change another replica committed just before our
// own write of the same key, delivered after we applied ours, shows until our
// echo follows it (milliseconds; both replicas end equal to the store).

// maxEchoes bounds the writes remembered per key.
const maxEchoes = 16

// Keys and fingerprints: what a write leaves behind that its echo will match.
func nodeKey(id string) string            { return "node/" + id }
func memberKey(name string) string        { return "member/" + name }
func legacyKey(network, en string) string { return "legacy/" + network + "/" + en }

const adminKey = "admin"

// nodeFP leaves out times (a store may round them) and the status.
func nodeFP(sn store.Node) string {
	removed := "live"
	switch {
	case sn.Expires.IsZero() && sn.AdminRemoved:
		removed = "removed by the administrator"
	case sn.Expires.IsZero():
		removed = "removed"
	}
	return sn.Member + "\x00" + sn.Role + "\x00" + sn.ENR + "\x00" + sn.PublicENR + "\x00" + removed
}

// memberFP leaves out the times but the replaced credential's end.
func memberFP(m store.Member) string {
	return fmt.Sprintf("%s\x00%t\x00%s\x00%d\x00%s", m.Hash, m.Revoked, m.PrevHash, store.Millis(m.PrevUntil), m.ChainHash)
}

const (
	fpDeleted = "\x00deleted"
	fpPut     = "\x00put"
)

// expect remembers a write this replica committed to a shared store. It must
// be called with writeMu held, after the store accepted the write.
func (r *Registry) expect(key, fp string) {
	if r.watcher == nil {
		return
	}
	q := append(r.echoes[key], fp)
	if len(q) > maxEchoes {
		q = q[len(q)-maxEchoes:]
	}
	r.echoes[key] = q
}

// superseded consumes the echo of one of our writes and reports whether a
// later write of ours to the same key is still to come back, in which case
// the change must not be applied: memory already holds something newer. A
// change that matches none of our writes is another replica's and is applied.
// Must be called with writeMu held.
func (r *Registry) superseded(key, fp string) bool {
	q := r.echoes[key]
	for i, p := range q {
		if p != fp {
			continue
		}
		rest := q[i+1:]
		if len(rest) == 0 {
			delete(r.echoes, key)
			return false
		}
		r.echoes[key] = rest
		return true
	}
	return false
}
