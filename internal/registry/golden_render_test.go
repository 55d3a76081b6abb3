package registry

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/noderecord"
)

// render is everything the goldens pin of r's state: every node's peer
// answer as its member gets it, and what the administrator and every
// member see of the nodes and the events. Nodes and peers are written by
// name and side ("acme/p1 (public)": reached at its public endpoint), so a
// golden reads as the policy. Anything an answer holds that is not the
// current record of a known node is written as "UNKNOWN", and a list
// entry whose private and public sides disagree fails the test.
func (w *world) render(r *Registry) string {
	w.t.Helper()
	lb := w.labels()
	var b strings.Builder
	if len(w.refused) > 0 {
		b.WriteString("\n== refused\n")
		for _, s := range w.refused {
			b.WriteString(s + "\n")
		}
	}
	b.WriteString("\n== peer answers, as each node's member asks for them\n")
	for _, name := range w.order {
		w.renderPeers(&b, r, w.nodes[name], lb)
	}
	b.WriteString("\n== nodes and events, as each principal sees them\n")
	for _, p := range append([]Principal{admin}, w.principals()...) {
		w.renderSeen(&b, r, p, lb)
	}
	return b.String()
}

func (w *world) principals() []Principal {
	ps := make([]Principal, len(w.members))
	for i, m := range w.members {
		ps[i] = Principal{Name: m}
	}
	return ps
}

// labels names every endpoint, consensus address and record text of the
// nodes' current records.
func (w *world) labels() map[string]string {
	lb := map[string]string{}
	for _, n := range w.nodes {
		rg := w.records(n)
		pair, err := noderecord.Verify(rg.Role, rg.ENR, rg.PublicENR)
		if err != nil {
			w.t.Fatal(err)
		}
		priv := n.name + " (private)"
		lb[pair.Node.Enode()], lb[pair.Node.ENR] = priv, priv
		if a := pair.Node.ConsensusAddr(); a != "" {
			lb[a] = priv
		}
		if pair.Public != nil {
			pub := n.name + " (public)"
			lb[pair.Public.Enode()], lb[pair.Public.ENR] = pub, pub
			if a := pair.Public.ConsensusAddr(); a != "" {
				lb[a] = pub
			}
		}
	}
	return lb
}

func label(lb map[string]string, s string) string {
	if l, ok := lb[s]; ok {
		return l
	}
	return "UNKNOWN " + s
}

func labelList(lb map[string]string, l []string) string {
	if len(l) == 0 {
		return "-"
	}
	out := make([]string, len(l))
	for i, s := range l {
		out[i] = label(lb, s)
	}
	return strings.Join(out, ", ")
}

func (w *world) renderPeers(b *strings.Builder, r *Registry, n *gnode, lb map[string]string) {
	fmt.Fprintf(b, "%s %s\n", n.name, n.role)
	ps, err := r.PeersFor(Principal{Name: n.member}, n.id)
	if err != nil {
		fmt.Fprintf(b, "  refused: %v\n", err)
		return
	}
	if labelList(lb, ps.ENRs) != labelList(lb, ps.Static) || !reflect.DeepEqual(ps.Trusted, ps.Static) {
		w.t.Errorf("%s: the records, trusted and static lists disagree: %v / %v / %v", n.name, ps.ENRs, ps.Trusted, ps.Static)
	}
	fmt.Fprintf(b, "  static:    %s\n", labelList(lb, ps.Static))
	fmt.Fprintf(b, "  bootnodes: %s\n", labelList(lb, ps.Bootnodes))
	if len(ps.Consensus) > 0 {
		fmt.Fprintf(b, "  consensus: %s\n", labelList(lb, ps.Consensus))
	}
}

func (w *world) revoked(r *Registry, name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.revoked(name)
}

func (w *world) renderSeen(b *strings.Builder, r *Registry, p Principal, lb map[string]string) {
	if !p.Admin && w.revoked(r, p.Name) {
		fmt.Fprintf(b, "%s: revoked, its credential is refused\n", p.Name)
		return
	}
	fmt.Fprintf(b, "%s:\n", p.Name)
	vs := r.Nodes(p)
	listed := map[string]NodeView{}
	for _, v := range vs {
		listed[v.ID] = v
		fmt.Fprintf(b, "  node %s\n", w.nodeLine(v, lb))
	}
	// The one-node endpoint shows exactly what the list does.
	for _, name := range w.order {
		n := w.nodes[name]
		v, err := r.Node(p, n.id)
		lv, ok := listed[n.id]
		switch {
		case ok && (err != nil || !reflect.DeepEqual(v, lv)):
			w.t.Errorf("%s: Node(%s) = %+v, %v; the list has %+v", p.Name, name, v, err, lv)
		case !ok && !errors.Is(err, ErrNotFound):
			w.t.Errorf("%s: Node(%s) = %+v, %v; not in the list, so want not found", p.Name, name, v, err)
		}
	}
	for _, e := range r.Events(p, 0) {
		fmt.Fprintf(b, "  event %s\n", w.eventLine(e))
	}
}

func (w *world) byID(id string) string {
	for name, n := range w.nodes {
		if n.id == id {
			return name
		}
	}
	return "UNKNOWN " + id
}

func (w *world) nodeLine(v NodeView, lb map[string]string) string {
	name := w.byID(v.ID)
	if n := w.nodes[name]; n == nil || n.member != v.Member {
		w.t.Errorf("node %s listed as %s's", name, v.Member)
	}
	f := []string{name, v.Role, w.lease(v)}
	if (v.Enode == "") != (v.ENR == "") || (v.Enode == "" && v.Seq != 0) {
		w.t.Errorf("%s: private side half shown: %+v", name, v)
	}
	if v.Enode != "" {
		f = append(f, fmt.Sprintf("private=%s seq %d", label(lb, v.Enode), v.Seq))
	}
	if v.PublicEnode != "" {
		f = append(f, fmt.Sprintf("public=%s seq %d", label(lb, v.PublicEnode), v.PublicSeq))
	}
	if v.Status != nil && len(v.Status.PeerIDs) > 0 {
		ps := make([]string, len(v.Status.PeerIDs))
		for i, id := range v.Status.PeerIDs {
			ps[i] = w.byID(id)
		}
		f = append(f, "peer IDs ["+strings.Join(ps, " ")+"]")
	}
	return strings.Join(f, " ")
}

// lease is a node's liveness and lease, relative to the clock.
func (w *world) lease(v NodeView) string {
	state := "live"
	if !v.Live {
		state = "down"
	}
	now := w.clock.Now()
	switch {
	case v.Expires.IsZero():
		return state + ", no lease"
	case v.Expires.After(now):
		return fmt.Sprintf("%s, lease ends in %s", state, v.Expires.Sub(now).Round(time.Second))
	}
	return fmt.Sprintf("%s, lease ended %s ago", state, now.Sub(v.Expires).Round(time.Second))
}

func (w *world) eventLine(e Event) string {
	if e.Node == "" {
		return fmt.Sprintf("%s %s", e.Kind, e.Member)
	}
	return fmt.Sprintf("%s %s %s", e.Kind, w.byID(e.Node), e.Role)
}

// lineDiff shows where two renderings part, with a few lines of each.
func lineDiff(want, got string) string {
	a, b := strings.Split(want, "\n"), strings.Split(got, "\n")
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	var out strings.Builder
	fmt.Fprintf(&out, "first difference at line %d\n", i+1)
	for k := max(0, i-3); k < i; k++ {
		fmt.Fprintf(&out, "  %s\n", a[k])
	}
	for k := i; k < min(len(a), i+12); k++ {
		fmt.Fprintf(&out, "- %s\n", a[k])
	}
	for k := i; k < min(len(b), i+12); k++ {
		fmt.Fprintf(&out, "+ %s\n", b[k])
	}
	return out.String()
}
