package registry

import "testing"

// TestSightOf is the visibility rule, case by case. The callers (Nodes,
// Node, Events, the dashboard's peer events) are held to it by their own
// tests and by the policy goldens (golden_test.go).
func TestSightOf(t *testing.T) {
	acme := Principal{Name: "acme"}
	cases := []struct {
		name   string
		p      Principal
		owner  string
		role   string
		listed bool
		want   Sight
	}{
		{"admin sees a private node in full", admin, "beta", "validator", true, SeeAll},
		{"admin sees an unlisted node in full", admin, "beta", "tx", false, SeeAll},
		{"admin sees a bootnode in full", admin, "beta", "bootnode", false, SeeAll},
		{"own validator in full", acme, "acme", "validator", true, SeeAll},
		{"own public node in full", acme, "acme", "public", true, SeeAll},
		{"own lapsed node in full", acme, "acme", "tx", false, SeeAll},
		{"other's listed public node by its public side", acme, "beta", "public", true, SeePublic},
		{"other's lapsed or revoked public node not at all", acme, "beta", "public", false, SeeNothing},
		{"other's validator not at all", acme, "beta", "validator", true, SeeNothing},
		{"other's tx node not at all", acme, "beta", "tx", true, SeeNothing},
		{"other's bootnode not at all", acme, "beta", "bootnode", true, SeeNothing},
		{"another member's member event not at all", acme, "beta", "", true, SeeNothing},
		{"own member event in full", acme, "acme", "", true, SeeAll},
		{"no name owns nothing", Principal{}, "", "tx", true, SeeNothing},
		{"a role is matched exactly", acme, "beta", "Public", true, SeeNothing},
	}
	for _, c := range cases {
		if got := SightOf(c.p, c.owner, c.role, c.listed); got != c.want {
			t.Errorf("%s: SightOf(%+v, %q, %q, %v) = %d, want %d", c.name, c.p, c.owner, c.role, c.listed, got, c.want)
		}
	}
}
