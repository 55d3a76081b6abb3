package httpapi_test

import (
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/dnstree"
	"github.com/consortium/consortium/internal/httpapi"
	"github.com/ethereum/go-ethereum/crypto"
)

// treeSource adapts the real dnstree.Trees to httpapi.TreeSource; it is
// bound after the harness made the registry the trees follow.
type treeSource struct{ t *dnstree.Trees }

func (s *treeSource) Tree(m string) (any, error) {
	v, err := s.t.Tree(m)
	if err != nil {
		return nil, err
	}
	return v, nil
}

func TestMemberTree(t *testing.T) {
	src := &treeSource{}
	h := newHarness(t, opts{api: apiWithTrees(src), ttl: time.Hour})
	acme, bank := h.addMember("acme"), h.addMember("bank")
	h.mustRegister(acme, newNode(t, "validator", "10.1.0.3", ""))
	h.mustRegister(bank, newNode(t, "public", "10.2.0.5", "203.0.113.2"))
	key, _ := crypto.GenerateKey()
	trees, err := dnstree.New(dnstree.NewRegistrySource(h.Registry), dnstree.Config{Domain: "example", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := trees.Update(); err != nil {
		t.Fatal(err)
	}
	src.t = trees

	var v dnstree.TreeView
	r := h.do("GET", "/v1/members/acme/tree", acme, nil)
	h.expect(r, 200, "")
	r.json(t, &v)
	// acme's own validator by its private endpoint, bank's public node by
	// its public one.
	if v.Member != "acme" || v.Nodes != 2 || !strings.HasPrefix(v.URL, "enrtree://") || !strings.HasSuffix(v.URL, "@acme.nodes.example") || len(v.Records) == 0 {
		t.Errorf("acme's tree %+v", v)
	}
	h.expect(h.do("GET", "/v1/members/acme/tree", h.Admin, nil), 200, "")
	// Another member's tree holds private endpoints: as if it did not exist.
	h.expect(h.do("GET", "/v1/members/acme/tree", bank, nil), 404, "not_found")
	h.expect(h.do("GET", "/v1/members/nobody/tree", h.Admin, nil), 404, "not_found")
	h.expect(h.do("GET", "/v1/members/acme/tree", "", nil), 401, "unauthenticated")
}

func TestMemberTreeOff(t *testing.T) {
	h := newHarness(t, opts{ttl: time.Hour})
	acme := h.addMember("acme")
	r := h.do("GET", "/v1/members/acme/tree", acme, nil)
	h.expect(r, 404, "not_found")
	if !strings.Contains(string(r.body), "--dns-listen") {
		t.Errorf("the 404 does not say how to turn trees on: %s", r.body)
	}
}

func apiWithTrees(src *treeSource) httpapi.Config { return httpapi.Config{Trees: src} }
