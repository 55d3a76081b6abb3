package registry

import (
	"slices"
	"sort"
	"testing"
)

// refLegacy is the scan Legacy did per request before the cache: the
// reference the cached views must match.
func refLegacy(r *Registry, p *Principal, network string) LegacyView {
	now := r.cfg.Now()
	v := LegacyView{Bootnodes: []string{}, Enodes: []string{}}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if network == "" {
		network = p.Name
	}
	own := p.Admin || network == p.Name
	if _, ok := r.members[network]; ok && !r.revoked(network) {
		for _, n := range r.nodes {
			if n.member != network || !n.live(now) {
				continue
			}
			switch {
			case own && n.role == "bootnode":
				v.Bootnodes = append(v.Bootnodes, n.enode)
			case own:
				v.Enodes = append(v.Enodes, n.enode)
			case n.role == "public":
				v.Enodes = append(v.Enodes, n.pubEnode)
			}
		}
	}
	sort.Strings(v.Bootnodes)
	sort.Strings(v.Enodes)
	return v
}

func TestLegacyViewsAreCachedPerIndex(t *testing.T) {
	p := newPop(t, "a", "b")
	for _, m := range []string{"a", "b"} {
		for _, role := range []string{"bootnode", "validator", "tx", "tx", "public", "public"} {
			p.add(m, role)
		}
	}
	a, b, admin := &Principal{Name: "a"}, &Principal{Name: "b"}, &Principal{Name: "admin", Admin: true}
	check := func() {
		t.Helper()
		for _, c := range []struct {
			p       *Principal
			network string
		}{{a, ""}, {a, "a"}, {a, "b"}, {b, "a"}, {admin, "a"}, {a, "nobody"}} {
			got, err := p.r.Legacy(c.p, c.network, false)
			if err != nil {
				t.Fatal(err)
			}
			want := refLegacy(p.r, c.p, c.network)
			if !slices.Equal(got.Enodes, want.Enodes) || !slices.Equal(got.Bootnodes, want.Bootnodes) {
				t.Errorf("%s reading %q: %v, want %v", c.p.Name, c.network, got, want)
			}
		}
	}
	check()
	first, _ := p.r.LegacyAnswer(a, "a", false)
	if again, _ := p.r.LegacyAnswer(a, "a", false); again != first {
		t.Fatal("a second read at one index built the view again")
	}
	if r1, r2 := first.Render("x", func(v LegacyView) []byte { return []byte("1") }), first.Render("x", func(v LegacyView) []byte { return []byte("2") }); r1 != r2 || string(r2.Body) != "1" {
		t.Fatal("a rendering is made again at one index")
	}
	p.add("a", "tx")
	after, _ := p.r.LegacyAnswer(a, "a", false)
	if after == first || len(after.View.Enodes) != len(first.View.Enodes)+1 || after.Index <= first.Index {
		t.Fatalf("after a registration: %d enodes at index %d (was %d at %d)", len(after.View.Enodes), after.Index, len(first.View.Enodes), first.Index)
	}
	check()
}
