package devnet

// The lines the monitor prints about links and registrations, as pure
// functions of what it saw.

import (
	"fmt"
	"sort"
	"strings"

	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/consortium/consortium/internal/registry"
)

// linkLine names a link's two ends and says what the policy makes of it.
// A devnet node goes by its label; a node the devnet did not start by its
// registration (member/id, as its "registered" line names it), judged by
// the policy like any other: a node registered outside the devnet is one
// of the consortium's, not a stranger. Only a node the registrar does not
// know is unknown. intended is the policy's verdict between devnet nodes.
func linkLine(v view, regs map[string]registry.NodeView, p [2]string, intended bool) (a, b, note string) {
	type end struct {
		name, member, role string
		known              bool
	}
	resolve := func(k string) end {
		id, outside := strings.CutPrefix(k, outsidePrefix)
		if !outside {
			member, _, _ := strings.Cut(k, "/")
			return end{name: k, member: member, known: true}
		}
		short := id[:min(12, len(id))]
		if r, ok := regs[id]; ok {
			return end{name: r.Member + "/" + short, member: r.Member, role: r.Role, known: true}
		}
		return end{name: "unknown node " + short}
	}
	x, y := resolve(p[0]), resolve(p[1])
	switch {
	case !x.known || !y.known:
		note = "  (a node the registrar does not know: outside the peer policy)"
	case strings.HasPrefix(p[0], outsidePrefix) || strings.HasPrefix(p[1], outsidePrefix):
		// One end registered outside the devnet: the same member, or two
		// public nodes, as intended() says for the devnet's own.
		if x.role == "" {
			x.role = v.roles[idOf(v, p[0])]
		}
		if y.role == "" {
			y.role = v.roles[idOf(v, p[1])]
		}
		pub := string(consortiuminit.RolePublic)
		if x.member != y.member && (x.role != pub || y.role != pub) {
			note = "  (outside the peer policy)"
		}
	case !intended:
		note = "  (outside the peer policy)"
	}
	return x.name, y.name, note
}

// idOf is the node ID of a devnet node's label in v.
func idOf(v view, label string) string {
	for id, l := range v.names {
		if l == label {
			return id
		}
	}
	return ""
}

// intended says whether the peer policy links two geth nodes: the same
// member, or two public nodes.
func intended(a, b nodeSpec) bool {
	return a.Member == b.Member || (a.Role == consortiuminit.RolePublic && b.Role == consortiuminit.RolePublic)
}

func pairOf(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

func sortPairs(ps [][2]string) {
	sort.Slice(ps, func(i, j int) bool { return ps[i][0]+" "+ps[i][1] < ps[j][0]+" "+ps[j][1] })
}

// registeredLine is the line for a node's registration. update: the
// registrar held a record of the node already, now replaced by one with a
// higher sequence number; said: this run printed a registration of it
// before. On a rerun every node's first registration updates the record
// its last run left, which is no news: only a record replaced during the
// run (geth restarted with a new record) is called a new one.
func registeredLine(name, role string, update, said bool) string {
	switch {
	case update && said:
		return fmt.Sprintf("registered %-16s %s (a new record)", name, role)
	case update:
		return fmt.Sprintf("registered %-16s %s (again: the registrar kept its record from an earlier run)", name, role)
	}
	return fmt.Sprintf("registered %-16s %s", name, role)
}
