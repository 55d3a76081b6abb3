package registry

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/noderecord"
	"github.com/consortium/consortium/internal/store"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// tn is a node for the transition tables: record text rec, lease ending
// at exp (zero: none), lapsed announced or not, reporting head.
func tn(rec string, exp time.Time, lapsed bool, head uint64) *node {
	return &node{
		idHex: "n", member: "acme", role: "tx", rec: &recInfo{Seq: 1, ENR: rec},
		expires: exp, lapsed: lapsed, status: Status{Head: head},
	}
}

func TestStepNode(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const retention = time.Hour
	soon, later, past, long := now.Add(30*time.Second), now.Add(40*time.Second), now.Add(-time.Second), now.Add(-2*time.Hour)
	hidden := tn("a", time.Time{}, true, 1)
	hidden.hidden = true
	st := &Status{Head: 9}
	cases := []struct {
		name string
		old  *node
		c    nodeChange
		// want: the node after (nil: none), or repeat: old itself
		repeat bool
		want   *node
		eff    effect
	}{
		{name: "first registration", old: nil,
			c: nodeChange{op: opPut, rec: tn("a", soon, false, 1), status: statusTake}, want: tn("a", soon, false, 1),
			eff: effect{moved: true, event: EventRegistered}},
		{name: "same record again while live: a longer lease, no answer moves", old: tn("a", soon, false, 1),
			c: nodeChange{op: opPut, rec: tn("a", later, false, 2), status: statusTake}, want: tn("a", later, false, 2)},
		{name: "an older echo of the same record does not shorten the lease nor take its status", old: tn("a", later, false, 2),
			c: nodeChange{op: opPut, rec: tn("a", soon, false, 1), status: statusUnlessOlder}, repeat: true},
		{name: "a stored row without a status keeps memory's", old: tn("a", soon, false, 2),
			c: nodeChange{op: opPut, rec: tn("a", later, false, 0), status: statusKeep}, want: tn("a", later, false, 2)},
		{name: "a changed record while live", old: tn("a", soon, false, 1),
			c: nodeChange{op: opPut, rec: tn("b", later, false, 1), status: statusTake}, want: tn("b", later, false, 1),
			eff: effect{moved: true, event: EventUpdated}},
		{name: "registered again after its lapse", old: tn("a", past, true, 1),
			c: nodeChange{op: opPut, rec: tn("a", soon, false, 1), status: statusTake}, want: tn("a", soon, false, 1),
			eff: effect{moved: true, event: EventRegistered}},
		{name: "registered again after its lease ran out, before the reaper: answers built meanwhile lack it", old: tn("a", past, false, 1),
			c: nodeChange{op: opPut, rec: tn("a", soon, false, 1), status: statusTake}, want: tn("a", soon, false, 1),
			eff: effect{moved: true}},
		{name: "a live node removed", old: tn("a", soon, false, 1),
			c: nodeChange{op: opPut, rec: tn("a", time.Time{}, false, 1), status: statusTake}, want: tn("a", time.Time{}, true, 1),
			eff: effect{moved: true, event: EventRemoved}},
		{name: "a lapsed node removed: in no answer", old: tn("a", past, true, 1),
			c: nodeChange{op: opPut, rec: tn("a", time.Time{}, false, 1), status: statusTake}, want: tn("a", time.Time{}, true, 1),
			eff: effect{event: EventRemoved}},
		{name: "a node removed after its lease ran out, before the reaper: a cached answer may hold it", old: tn("a", past, false, 1),
			c: nodeChange{op: opPut, rec: tn("a", time.Time{}, false, 1), status: statusTake}, want: tn("a", time.Time{}, true, 1),
			eff: effect{moved: true, event: EventRemoved}},
		{name: "a removal repeated", old: tn("a", time.Time{}, true, 1),
			c: nodeChange{op: opPut, rec: tn("a", time.Time{}, false, 1), status: statusTake}, repeat: true},
		{name: "the administrator's removal of a removed node hides it, telling nothing", old: tn("a", time.Time{}, true, 1),
			c: nodeChange{op: opPut, rec: hidden, status: statusTake}, want: hidden},
		{name: "a stored row already over replaces a live node", old: tn("a", soon, false, 1),
			c: nodeChange{op: opPut, rec: tn("b", past, false, 1), status: statusUnlessOlder}, want: tn("b", past, true, 1),
			eff: effect{moved: true, event: EventExpired}},

		{name: "renewal with a status", old: tn("a", soon, false, 1),
			c: nodeChange{op: opRenew, expires: later, st: st}, want: tn("a", later, false, 9), eff: effect{status: true}},
		{name: "an older renewal batch: neither its lease nor its status", old: tn("a", later, false, 1),
			c: nodeChange{op: opRenew, expires: soon, st: st}, want: tn("a", later, false, 1)},
		{name: "a status without a lease", old: tn("a", soon, false, 1),
			c: nodeChange{op: opRenew, st: st}, want: tn("a", soon, false, 9), eff: effect{status: true}},
		{name: "another registrar's renewal after the reaper here", old: tn("a", past, true, 1),
			c: nodeChange{op: opRenew, expires: soon}, want: tn("a", soon, false, 1),
			eff: effect{moved: true, event: EventRegistered}},
		{name: "a renewal does not bring back a removed node", old: tn("a", time.Time{}, true, 1),
			c: nodeChange{op: opRenew, expires: soon, st: st}, repeat: true},
		{name: "a renewal of an unknown node", old: nil, c: nodeChange{op: opRenew, expires: soon}, repeat: true},

		{name: "a lease that ran out", old: tn("a", past, false, 1), c: nodeChange{op: opExpire},
			want: tn("a", past, true, 1), eff: effect{moved: true, event: EventExpired}},
		{name: "a live lease does not expire", old: tn("a", soon, false, 1), c: nodeChange{op: opExpire}, repeat: true},
		{name: "an expiry told once", old: tn("a", past, true, 1), c: nodeChange{op: opExpire}, repeat: true},

		{name: "a live node freed", old: tn("a", soon, false, 1), c: nodeChange{op: opDelete, cause: EventFreed},
			eff: effect{moved: true, event: EventFreed}},
		{name: "a lapsed node purged", old: tn("a", long, true, 1), c: nodeChange{op: opDelete, cause: EventPurged},
			eff: effect{event: EventPurged}},
		{name: "a replicated deletion of a node lapsed past the retention is a purge", old: tn("a", long, true, 1),
			c: nodeChange{op: opDelete}, eff: effect{event: EventPurged}},
		{name: "a replicated deletion of a node lapsed lately is a release", old: tn("a", past, true, 1),
			c: nodeChange{op: opDelete}, eff: effect{event: EventFreed}},
		{name: "a replicated deletion of a hidden node is a release", old: hidden, c: nodeChange{op: opDelete},
			eff: effect{event: EventFreed}},
		{name: "a deletion of an unknown node", old: nil, c: nodeChange{op: opDelete}},

		{name: "a live public node turns validator: it left the public side, then its update", old: as(tn("a", soon, false, 1), "public"),
			c: nodeChange{op: opPut, rec: as(tn("b", later, false, 1), "validator"), status: statusTake}, want: tn("b", later, false, 1),
			eff: effect{moved: true, event: EventUpdated, left: true}},
		{name: "a public node whose lease ran out, not yet told, turns tx: it left too", old: as(tn("a", past, false, 1), "public"),
			c: nodeChange{op: opPut, rec: tn("b", later, false, 1), status: statusTake}, want: tn("b", later, false, 1),
			eff: effect{moved: true, event: EventUpdated, left: true}},
		{name: "a live public node replaced by a row already over in another role: left, then expired", old: as(tn("a", soon, false, 1), "public"),
			c: nodeChange{op: opPut, rec: tn("b", past, false, 1), status: statusUnlessOlder}, want: tn("b", past, true, 1),
			eff: effect{moved: true, event: EventExpired, left: true}},
		{name: "a lapsed public node back as a validator: it had been told gone", old: as(tn("a", past, true, 1), "public"),
			c: nodeChange{op: opPut, rec: as(tn("b", soon, false, 1), "validator"), status: statusTake}, want: tn("b", soon, false, 1),
			eff: effect{moved: true, event: EventRegistered}},
		{name: "a tx node turns public: no departure", old: tn("a", soon, false, 1),
			c: nodeChange{op: opPut, rec: as(tn("b", later, false, 1), "public"), status: statusTake}, want: tn("b", later, false, 1),
			eff: effect{moved: true, event: EventUpdated}},
		{name: "a public node moves, public still: no departure", old: as(tn("a", soon, false, 1), "public"),
			c: nodeChange{op: opPut, rec: as(tn("b", later, false, 1), "public"), status: statusTake}, want: tn("b", later, false, 1),
			eff: effect{moved: true, event: EventUpdated}},
	}
	for _, c := range cases {
		var before node
		if c.old != nil {
			before = *c.old
		}
		got, out, eff := stepNode(c.old, c.c, now, retention)
		if eff != c.eff {
			t.Errorf("%s: effect %+v, want %+v", c.name, eff, c.eff)
		}
		if c.old != nil && !sameNode(&before, c.old) {
			t.Errorf("%s: the old node was changed in place: %+v", c.name, *c.old)
		}
		switch {
		case c.repeat:
			if out != keepOld {
				t.Errorf("%s: outcome %d (%+v), want the old one kept (a repeat)", c.name, out, got)
			}
		case c.want == nil:
			if out != dropNode && (c.old != nil || out != keepOld) {
				t.Errorf("%s: outcome %d (%+v), want none held", c.name, out, got)
			}
		case out != holdNext || !sameNode(&got, c.want):
			t.Errorf("%s: outcome %d, %+v; want %+v held", c.name, out, got, c.want)
		}
	}
}

// as is n in role.
func as(n *node, role noderecord.Role) *node {
	n.role = role
	return n
}

func sameNode(a, b *node) bool {
	return a.rec.ENR == b.rec.ENR && a.expires.Equal(b.expires) && a.lapsed == b.lapsed &&
		a.hidden == b.hidden && statusEqual(a.status, b.status)
}

func TestStepMember(t *testing.T) {
	m := store.Member{Name: "acme", Hash: "h1"}
	revoked := store.Member{Name: "acme", Hash: "h1", Revoked: true}
	rehashed := store.Member{Name: "acme", Hash: "h2", ChainHash: "h2"} // a new vote
	rotated := store.Member{Name: "acme", Hash: "h2", PrevHash: m.Hash} // by the member
	revokedRehashed := store.Member{Name: "acme", Hash: "h2", Revoked: true}
	cases := []struct {
		name string
		old  *store.Member
		m    store.Member
		want effect
	}{
		{"a new member: an unknown member's nodes were in no answer", nil, m, effect{moved: true, event: EventMemberAdded, nodes: nodesJoin}},
		{"known here only once revoked", nil, revoked, effect{moved: true, event: EventMemberAdded}},
		{"the same again", &m, m, effect{}},
		{"revoked: its nodes leave", &m, revoked, effect{moved: true, event: EventMemberRevoked, nodes: nodesLeave}},
		{"revoked again", &revoked, revoked, effect{}},
		{"readmitted (the chain's vote): its nodes are back", &revoked, m, effect{moved: true, event: EventMemberAdded, nodes: nodesJoin}},
		{"readmitted with another credential", &m, rehashed, effect{moved: true, event: EventMemberAdded}},
		{"its credential rotated: no answer moves", &m, rotated, effect{}},
		{"a revoked member's hash replaced", &revoked, revokedRehashed, effect{moved: true}},
	}
	for _, c := range cases {
		if got := stepMember(c.old, c.m); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// TestMemberNodeEvents: a member's revocation or readmission tells each of
// its nodes that is in the answers, in its role and in ID order; nodes
// out of the answers already (lapsed, lease over, removed, hidden) and
// other members' nodes are not told.
func TestMemberNodeEvents(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	soon, past := now.Add(30*time.Second), now.Add(-time.Second)
	hidden := tn("h", time.Time{}, true, 0)
	hidden.hidden = true
	mk := map[string]*node{
		"03": as(tn("a", soon, false, 0), "public"),
		"01": as(tn("b", soon, false, 0), "validator"),
		"02": tn("c", past, true, 0),        // lapsed
		"04": tn("d", past, false, 0),       // lease over, not yet told
		"05": tn("e", time.Time{}, true, 0), // removed by its member
		"06": hidden,                        // removed by the administrator
		"07": as(tn("f", soon, false, 0), "public"),
	}
	nodes := map[enode.ID]*node{}
	for i, id := range []string{"03", "01", "02", "04", "05", "06", "07"} {
		n := mk[id]
		n.idHex = id
		if id == "07" {
			n.member = "beta"
		}
		nodes[enode.ID{byte(i)}] = n
	}
	want := func(kind EventKind) []Event {
		return []Event{{Kind: kind, Member: "acme", Node: "01", Role: "validator"}, {Kind: kind, Member: "acme", Node: "03", Role: "public"}}
	}
	cases := []struct {
		name string
		move memberMove
		want []Event
	}{
		{"revoked: its live nodes left", nodesLeave, want(EventLeft)},
		{"readmitted: its live nodes are registered again", nodesJoin, want(EventRegistered)},
		{"a change that moves no node", nodesStay, nil},
	}
	for _, c := range cases {
		if got := memberNodeEvents("acme", nodes, c.move, now); !slices.Equal(got, c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

// A node removed after its lease ran out but before the reaper told it was
// left in the answers cached meanwhile: the removal moved nothing (the node
// was not live) and the reaper skips a removed node, so peers kept it until
// some other change. The removal now moves the answers.
func TestRemovalBeforeTheReaperMovesTheAnswers(t *testing.T) {
	c := newCluster(t, 1, false)
	r := c.regs[0]
	c.addMember(r, "m")
	p := Principal{Name: "m"}
	n1, n2 := newNode(t, "m", "tx"), newNode(t, "m", "tx")
	c.register(r, n1, 1, "10.0.0.1")
	v2 := c.register(r, n2, 1, "10.0.0.2")
	c.clock.Advance(sharedTTL - time.Second)
	if _, err := r.Renew(context.Background(), p, n1.id, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := r.PeersFor(p, n1.id); err != nil { // the answer is built and cached
		t.Fatal(err)
	}
	c.clock.Advance(2 * time.Second) // n2's lease is over; nothing reaps it
	if ps, err := r.PeersFor(p, n1.id); err != nil || !slices.Equal(ps.Static, []string{v2.Enode}) {
		t.Fatalf("n1's answer = %v, %v; want n2 still in the answer cached before its lease ran out", ps, err)
	}
	if err := r.Remove(context.Background(), p, n2.id); err != nil {
		t.Fatal(err)
	}
	ps, err := r.PeersFor(p, n1.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Static) != 0 {
		t.Fatalf("n1's answer after n2's removal = %v, want none", ps.Static)
	}
}
