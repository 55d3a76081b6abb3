package etcd

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/store"
)

// keys builds and parses the keys under one prefix. Names, IDs and legacy
// path segments are path-escaped, so that no value can reach another key.
type keys struct{ prefix string }

const (
	kindAdmin = iota + 1
	kindMember
	kindNode
	kindLease
	kindStatus
	kindLegacy
)

func (k keys) admin() string             { return k.prefix + "admin" }
func (k keys) member(name string) string { return k.prefix + "members/" + url.PathEscape(name) }
func (k keys) node(id string) string     { return k.prefix + "nodes/" + url.PathEscape(id) }
func (k keys) lease(id string) string    { return k.prefix + "leases/" + url.PathEscape(id) }
func (k keys) status(id string) string   { return k.prefix + "status/" + url.PathEscape(id) }
func (k keys) legacy(network, enode string) string {
	return k.prefix + "legacy/" + url.PathEscape(network) + "/" + url.PathEscape(enode)
}

// parse returns a key's kind and its name or ID (for legacy keys, the
// network and the enode). ok is false for a key this store does not write.
func (k keys) parse(key string) (kind int, a, b string, ok bool) {
	rest, found := strings.CutPrefix(key, k.prefix)
	if !found {
		return 0, "", "", false
	}
	if rest == "admin" {
		return kindAdmin, "", "", true
	}
	dir, name, found := strings.Cut(rest, "/")
	if !found {
		return 0, "", "", false
	}
	switch dir {
	case "members":
		kind = kindMember
	case "nodes":
		kind = kindNode
	case "leases":
		kind = kindLease
	case "status":
		kind = kindStatus
	case "legacy":
		network, enode, found := strings.Cut(name, "/")
		if !found {
			return 0, "", "", false
		}
		var err1, err2 error
		a, err1 = url.PathUnescape(network)
		b, err2 = url.PathUnescape(enode)
		return kindLegacy, a, b, err1 == nil && err2 == nil
	default:
		return 0, "", "", false
	}
	a, err := url.PathUnescape(name)
	return kind, a, "", err == nil && a != ""
}

// Values. Times are Unix milliseconds, zero for the zero time, as the SQLite
// store keeps them.

type memberValue struct {
	Name      string `json:"name"`
	Hash      string `json:"hash"`
	Created   int64  `json:"created"`
	Revoked   bool   `json:"revoked,omitempty"`
	RevokedAt int64  `json:"revoked_at,omitempty"`
	// Written only when set, as nodeValue's later fields.
	PrevHash  string `json:"prev_hash,omitempty"`
	PrevUntil int64  `json:"prev_until,omitempty"`
	ChainHash string `json:"chain_hash,omitempty"`
}

type nodeValue struct {
	ID         string `json:"id"`
	Member     string `json:"member"`
	Role       string `json:"role"`
	ENR        string `json:"enr"`
	PublicENR  string `json:"public_enr,omitempty"`
	Registered int64  `json:"registered"`
	Updated    int64  `json:"updated"`
	// Written only when set, so that a value an older version wrote
	// decodes the same and the older version reads a newer one.
	PublicSeq    uint64 `json:"public_seq,omitempty"`
	AdminRemoved bool   `json:"admin_removed,omitempty"`
}

type legacyValue struct {
	Network string `json:"network"`
	Enode   string `json:"enode"`
	Expires int64  `json:"expires"`
}

func encodeMember(m store.Member) string {
	return mustJSON(memberValue{Name: m.Name, Hash: m.Hash, Created: store.Millis(m.Created), Revoked: m.Revoked, RevokedAt: store.Millis(m.RevokedAt),
		PrevHash: m.PrevHash, PrevUntil: store.Millis(m.PrevUntil), ChainHash: m.ChainHash})
}

func decodeMember(v []byte) (store.Member, error) {
	var mv memberValue
	if err := json.Unmarshal(v, &mv); err != nil {
		return store.Member{}, err
	}
	return store.Member{Name: mv.Name, Hash: mv.Hash, Created: store.FromMillis(mv.Created), Revoked: mv.Revoked, RevokedAt: store.FromMillis(mv.RevokedAt),
		PrevHash: mv.PrevHash, PrevUntil: store.FromMillis(mv.PrevUntil), ChainHash: mv.ChainHash}, nil
}

func encodeNode(n store.Node) string {
	return mustJSON(nodeValue{ID: n.ID, Member: n.Member, Role: n.Role, ENR: n.ENR, PublicENR: n.PublicENR, Registered: store.Millis(n.Registered), Updated: store.Millis(n.Updated),
		PublicSeq: n.PublicSeq, AdminRemoved: n.AdminRemoved})
}

// decodeNode gives the node without Expires and Status.
func decodeNode(v []byte) (store.Node, error) {
	var nv nodeValue
	if err := json.Unmarshal(v, &nv); err != nil {
		return store.Node{}, err
	}
	return store.Node{ID: nv.ID, Member: nv.Member, Role: nv.Role, ENR: nv.ENR, PublicENR: nv.PublicENR, Registered: store.FromMillis(nv.Registered), Updated: store.FromMillis(nv.Updated),
		PublicSeq: nv.PublicSeq, AdminRemoved: nv.AdminRemoved}, nil
}

// encodeLease writes a lease end as milliseconds in 19 digits, zero-padded,
// so that etcd's byte-wise comparison in a transaction orders leases by time
// (Renew only ever extends one). The zero time, a member's removal, is all
// zeros.
func encodeLease(t time.Time) string { return fmt.Sprintf("%019d", max(store.Millis(t), 0)) }

func decodeLease(v []byte) (time.Time, error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("lease %q: %w", v, err)
	}
	return store.FromMillis(n), nil
}

func encodeLegacy(l store.Legacy) string {
	return mustJSON(legacyValue{Network: l.Network, Enode: l.Enode, Expires: store.Millis(l.Expires)})
}

func decodeLegacy(v []byte) (store.Legacy, error) {
	var lv legacyValue
	if err := json.Unmarshal(v, &lv); err != nil {
		return store.Legacy{}, err
	}
	return store.Legacy{Network: lv.Network, Enode: lv.Enode, Expires: store.FromMillis(lv.Expires)}, nil
}

// mustJSON marshals values made of strings, numbers and booleans, which
// cannot fail.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
