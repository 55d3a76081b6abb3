// Package migrate copies a registrar's whole state from one store to
// another (SQLite on one machine to etcd for several replicas), refusing a
// destination that already holds a consortium, and checks the copy by
// reading it back.
package migrate

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/consortium/consortium/internal/store"
)

// Report says what was copied.
type Report struct {
	Admin   bool // the administrator credential's hash
	Members int  // members, revoked ones included
	Revoked int
	Nodes   int // node records, lapsed ones included
	Legacy  int // enodes posted on the seed's open POST /
}

func (r Report) String() string {
	admin := "no administrator credential"
	if r.Admin {
		admin = "the administrator credential (its hash)"
	}
	return fmt.Sprintf("copied %s, %d members (%d revoked) with their credential hashes, %d node records, %d legacy enodes",
		admin, r.Members, r.Revoked, r.Nodes, r.Legacy)
}

// ErrNotEmpty is returned when the destination already holds state.
var ErrNotEmpty = errors.New("destination store is not empty")

// Copy copies everything in from to to. The destination must be empty: a
// migration never merges two consortia. After writing, it loads the
// destination and compares it with the source.
func Copy(ctx context.Context, from, to store.Store) (Report, error) {
	var rep Report
	src, err := from.Load(ctx)
	if err != nil {
		return rep, fmt.Errorf("reading the source: %w", err)
	}
	dst, err := to.Load(ctx)
	if err != nil {
		return rep, fmt.Errorf("reading the destination: %w", err)
	}
	if dst.AdminHash != "" || len(dst.Members) > 0 || len(dst.Nodes) > 0 || len(dst.Legacy) > 0 {
		return rep, fmt.Errorf("%w: it has %d members and %d node records; migrate into an empty store (a new etcd prefix)", ErrNotEmpty, len(dst.Members), len(dst.Nodes))
	}
	// The administrator hash goes last, so a registrar pointed at a
	// destination that a failure left half-written does not mistake it for
	// a finished consortium; the errors say to clear it.
	for _, m := range src.Members {
		if err := to.PutMember(ctx, m); err != nil {
			return rep, fmt.Errorf("writing member %s (the destination is now partly written; clear it before trying again): %w", m.Name, err)
		}
		rep.Members++
		if m.Revoked {
			rep.Revoked++
		}
	}
	for _, n := range src.Nodes {
		if err := to.PutNode(ctx, n); err != nil {
			return rep, fmt.Errorf("writing node %s (the destination is now partly written; clear it before trying again): %w", n.ID, err)
		}
		rep.Nodes++
	}
	for _, l := range src.Legacy {
		if err := to.PutLegacy(ctx, l); err != nil {
			return rep, fmt.Errorf("writing a legacy enode (the destination is now partly written; clear it before trying again): %w", err)
		}
		rep.Legacy++
	}
	if src.AdminHash != "" {
		if err := to.SetAdminHash(ctx, src.AdminHash); err != nil {
			return rep, fmt.Errorf("writing the administrator hash (the destination is now partly written; clear it before trying again): %w", err)
		}
		rep.Admin = true
	}
	got, err := to.Load(ctx)
	if err != nil {
		return rep, fmt.Errorf("reading the destination back: %w", err)
	}
	if err := Compare(src, got); err != nil {
		return rep, fmt.Errorf("the copy differs from the source: %w", err)
	}
	return rep, nil
}

// Compare reports the first difference between two states, ignoring order.
func Compare(a, b *store.State) error {
	if a.AdminHash != b.AdminHash {
		return errors.New("administrator hash")
	}
	if len(a.Members) != len(b.Members) || len(a.Nodes) != len(b.Nodes) || len(a.Legacy) != len(b.Legacy) {
		return fmt.Errorf("counts: %d/%d/%d members/nodes/legacy vs %d/%d/%d",
			len(a.Members), len(a.Nodes), len(a.Legacy), len(b.Members), len(b.Nodes), len(b.Legacy))
	}
	am, bm := sortedMembers(a.Members), sortedMembers(b.Members)
	for i := range am {
		x, y := am[i], bm[i]
		if x.Name != y.Name || x.Hash != y.Hash || x.Revoked != y.Revoked || !x.Created.Equal(y.Created) || !x.RevokedAt.Equal(y.RevokedAt) ||
			x.PrevHash != y.PrevHash || !x.PrevUntil.Equal(y.PrevUntil) || x.ChainHash != y.ChainHash {
			return fmt.Errorf("member %s", x.Name)
		}
	}
	an, bn := sortedNodes(a.Nodes), sortedNodes(b.Nodes)
	for i := range an {
		x, y := an[i], bn[i]
		if x.ID != y.ID || x.Member != y.Member || x.Role != y.Role || x.ENR != y.ENR || x.PublicENR != y.PublicENR ||
			!x.Expires.Equal(y.Expires) || !x.Registered.Equal(y.Registered) || string(x.Status) != string(y.Status) ||
			x.PublicSeq != y.PublicSeq || x.AdminRemoved != y.AdminRemoved {
			return fmt.Errorf("node %s", x.ID)
		}
	}
	return nil
}

func sortedMembers(ms []store.Member) []store.Member {
	out := append([]store.Member(nil), ms...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func sortedNodes(ns []store.Node) []store.Node {
	out := append([]store.Node(nil), ns...)
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
