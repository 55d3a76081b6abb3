//go:build e2e

package e2e

import (
	"context"
	"fmt"
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
// outside a node's set that dials in is disconnected at once, and the plain
// node has no record in the directory, so it is in no set; the public
// node's allow-list keeps its TCP out altogether. So the check is that it
// found and reached its member's validator and transaction node (each
// one's agent logs the disconnection, with the plain node's address), not
// that it stays peered: see docs/deploy.md, "A node with no agent".

// plainFoundByDNS restarts every m-plain, so that its first read of the
// tree comes after the mesh check, when every node of its member is
// registered (geth reads a tree's root again only every 30 minutes: a node
// registered after that first read would not be found in this test), and
// waits until, for every member, the validator's and the transaction
// node's agents have seen a connection from it.
func (c *bftConsortium) plainFoundByDNS(t *testing.T) {
	restarted := time.Now()
	for _, m := range bftMembers {
		docker(t, "restart", "-t", "5", c.mustContainer(t, m+"-plain"))
	}
	since := restarted.UTC().Format(time.RFC3339)
	for i, m := range bftMembers {
		ip := fmt.Sprintf("%s.%d.14:", bftNetPrefix, i+1)
		d := waitFor(t, m+"-plain reached its member's nodes", 3*time.Minute, 2*time.Second, func() (bool, string) {
			var missing []string
			for _, role := range []string{"validator", "tx"} {
				id, err := projectContainer(bftProject, m+"-"+role+"-agent")
				if err != nil {
					return false, err.Error()
				}
				out, _ := run(context.Background(), nil, "docker", "logs", "--since", since, id)
				seen := false
				for _, l := range strings.Split(out, "\n") {
					if strings.Contains(l, "disconnected a peer outside the set") && strings.Contains(l, "remote="+ip) {
						seen = true
						break
					}
				}
				if !seen {
					missing = append(missing, m+"-"+role)
				}
			}
			return len(missing) == 0, fmt.Sprintf("no connection from %s-plain (%s) seen by %v", m, strings.TrimSuffix(ip, ":"), missing)
		})
		c.record(t, m+"-plain restarted → reached its validator and tx node", time.Since(restarted),
			fmt.Sprintf("%.1f s of it waited here; DNS only; dropped by their guards (no record)", d.Seconds()))
	}
	// And nothing but its member's nodes: the tree of a member holds no
	// other member's private endpoints, so the plain node never reaches
	// another member's network (netrestrict would stop it too): its peers,
	// if any at a poll, are its member's.
	for i, m := range bftMembers {
		var peers []struct {
			Network struct {
				RemoteAddress string `json:"remoteAddress"`
			} `json:"network"`
		}
		if err := c.jsService(m+"-plain", `admin.peers`, &peers); err != nil {
			t.Errorf("%s-plain: %v", m, err)
			continue
		}
		for _, p := range peers {
			if !strings.HasPrefix(p.Network.RemoteAddress, fmt.Sprintf("%s.%d.", bftNetPrefix, i+1)) {
				t.Errorf("%s-plain is peered with %s, outside its member's network", m, p.Network.RemoteAddress)
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
