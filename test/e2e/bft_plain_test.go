//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The node with no agent (issue 23): per member, "m-plain" runs plain geth
// v1.17 whose only peering flag is --discovery.dns with the member's
// enrtree:// URL from consortium init, and whose resolver is the
// registrars (deploy/compose/gen-compose.sh). Nothing else names a node to
// it, so every connection it makes comes from the member's signed tree.
//
// What the member's nodes do with it is the guard's rule (issue 18): a peer
// outside a node's set that dials in is disconnected at once. So the plain
// node is registered too, by "m-plain-register": `consortium node register`
// with the key geth made, which keeps its signed record leased and never
// talks to geth. The check is that it joins: it is peered with its
// member's validator and transaction node, still is a while later (not
// dropped by their guards), and with nothing outside its member's network.
// The public node's allow-list admits only other members' public nodes, so
// it is not among them.

// plainFoundByDNS restarts every m-plain, so that its first read of the
// tree comes after the mesh check, when every node of its member is
// registered (geth reads a tree's root again only every 30 minutes: a node
// registered after that first read would not be found in this test), and
// waits until, for every member, it is peered with the validator and the
// transaction node.
func (c *bftConsortium) plainFoundByDNS(t *testing.T) {
	restarted := time.Now()
	for _, m := range bftMembers {
		docker(t, "restart", "-t", "5", c.mustContainer(t, m+"-plain"))
	}
	peersOf := func(m string) ([]string, error) {
		var peers []struct {
			Network struct {
				RemoteAddress string `json:"remoteAddress"`
			} `json:"network"`
		}
		if err := c.jsService(m+"-plain", `admin.peers`, &peers); err != nil {
			return nil, err
		}
		var out []string
		for _, p := range peers {
			out = append(out, p.Network.RemoteAddress)
		}
		return out, nil
	}
	missing := func(i int, m string) (bool, string) {
		peers, err := peersOf(m)
		if err != nil {
			return false, err.Error()
		}
		var lack []string
		for _, role := range []struct{ name, host string }{{"validator", "11"}, {"tx", "12"}} {
			ip := fmt.Sprintf("%s.%d.%s:", bftNetPrefix, i+1, role.host)
			if !slices.ContainsFunc(peers, func(a string) bool { return strings.HasPrefix(a, ip) }) {
				lack = append(lack, m+"-"+role.name)
			}
		}
		return len(lack) == 0, fmt.Sprintf("%s-plain peers %v; not peered with %v", m, peers, lack)
	}
	for i, m := range bftMembers {
		d := waitFor(t, m+"-plain peered with its member's nodes", 3*time.Minute, 2*time.Second, func() (bool, string) { return missing(i, m) })
		c.record(t, m+"-plain restarted → peered with its validator and tx node", time.Since(restarted),
			fmt.Sprintf("%.1f s of it waited here; DNS only, record by node register", d.Seconds()))
	}
	// Still peered a while later: their guards keep a registered peer.
	time.Sleep(15 * time.Second)
	for i, m := range bftMembers {
		if ok, why := missing(i, m); !ok {
			t.Errorf("15 s after joining: %s", why)
		}
	}
	// And nothing but its member's nodes: the tree of a member holds no
	// other member's private endpoints, so the plain node never reaches
	// another member's network (netrestrict would stop it too).
	for i, m := range bftMembers {
		peers, err := peersOf(m)
		if err != nil {
			t.Errorf("%s-plain: %v", m, err)
			continue
		}
		for _, a := range peers {
			if !strings.HasPrefix(a, fmt.Sprintf("%s.%d.", bftNetPrefix, i+1)) {
				t.Errorf("%s-plain is peered with %s, outside its member's network", m, a)
			}
		}
	}
}

// jsService is js for a container that is a compose service of its own
// (not a node's -geth container).
func (c *bftConsortium) jsService(svc, expr string, v any) error {
	id, err := projectContainer(bftProject, svc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := run(ctx, nil, "docker", "exec", id, "geth", "attach", "--exec", "JSON.stringify("+expr+")", "/data/geth.ipc")
	if err != nil {
		return err
	}
	return decodeConsole(svc, out, v)
}
