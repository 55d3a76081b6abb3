package dnstree

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store/sqlite"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/miekg/dns"
)

// pnode is one registered node of the model the test keeps beside the
// registry.
type pnode struct {
	member    int
	role      string
	id        enode.ID
	priv, pub string // IPs; pub only for a public node
	removed   bool
}

// TestPrivacyRandomTopologies: on a real registry (SQLite) with random
// members, roles, removals and revocations, each member's zone, read by
// go-ethereum's dnsdisc client over UDP from that member's address, holds
// exactly its own live nodes by private endpoint and the other live
// members' public nodes by public endpoint: never a private endpoint of
// another member. Read from any other member's address, or when revoked,
// the zone is REFUSED.
func TestPrivacyRandomTopologies(t *testing.T) {
	roles := []string{"bootnode", "validator", "tx", "public"}
	for round := range 20 {
		t.Run(fmt.Sprint("topology", round), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(round), 1459))
			ctx := context.Background()
			st, err := sqlite.Open(ctx, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			r, err := registry.Open(ctx, st, registry.Config{Logger: quiet})
			if err != nil {
				t.Fatal(err)
			}
			admin := registry.Principal{Admin: true}
			k := 2 + rng.IntN(4)
			names := make([]string, k)
			revoked := make([]bool, k)
			nets := map[string][]netip.Prefix{}
			for i := range names {
				names[i] = fmt.Sprintf("m%d", i)
				if _, err := r.AddMember(ctx, admin, names[i]); err != nil {
					t.Fatal(err)
				}
				// Member i's network is 127.0.<i+1>.0/24: on Linux all of
				// 127/8 is loopback, so the test can query from it.
				nets[names[i]] = []netip.Prefix{netip.MustParsePrefix(fmt.Sprintf("127.0.%d.0/24", i+1))}
			}
			var nodes []*pnode
			for mi := range k {
				for j := range rng.IntN(12) {
					key := testutil.Key(t)
					n := &pnode{member: mi, role: roles[rng.IntN(len(roles))], id: enode.PubkeyToIDV4(&key.PublicKey),
						priv: fmt.Sprintf("10.%d.%d.%d", mi+1, j/200, j%200+1)}
					reg := registry.Registration{Role: n.role, ENR: testutil.ENR(t, key, 1, n.priv, 30303, 30303)}
					if n.role == "public" {
						n.pub = fmt.Sprintf("198.51.%d.%d", mi+1, j+1)
						reg.PublicENR = testutil.ENR(t, key, 1, n.pub, 30303, 30303)
					}
					if _, _, err := r.Register(ctx, registry.Principal{Name: names[mi]}, reg); err != nil {
						t.Fatal(err)
					}
					nodes = append(nodes, n)
				}
			}
			for _, n := range nodes {
				if rng.IntN(5) == 0 {
					if err := r.Remove(ctx, registry.Principal{Name: names[n.member]}, n.id.String()); err != nil {
						t.Fatal(err)
					}
					n.removed = true
				}
			}
			for mi := range k {
				if rng.IntN(6) == 0 {
					if _, err := r.RevokeMember(ctx, admin, names[mi]); err != nil {
						t.Fatal(err)
					}
					revoked[mi] = true
				}
			}

			tr := newTrees(t, NewRegistrySource(r))
			if err := tr.Update(); err != nil {
				t.Fatal(err)
			}
			_, addr := serve(t, tr, ServerConfig{Access: AllowNets(nets), RatePerSecond: 1e6, RateBurst: 1e6})
			from := func(mi int) string { return fmt.Sprintf("127.0.%d.1", mi+1) }

			checked := 0
			defer func() {
				t.Logf("%d members (%d revoked), %d nodes, %d records checked", k, count(revoked), len(nodes), checked)
			}()
			for b := range k {
				zone := tr.Zone(names[b])
				for a := range k {
					if a == b && !revoked[b] {
						continue
					}
					in, err := resolver{server: addr, from: from(a)}.exchange(ctx, zone, dns.TypeTXT)
					if err != nil {
						t.Fatal(err)
					}
					if in.Rcode != dns.RcodeRefused || len(in.Answer)+len(in.Ns)+len(in.Extra) > 0 {
						t.Errorf("%s's zone read from %s's address (revoked %v): %s with %d records, want a bare REFUSED",
							names[b], names[a], revoked[b], dns.RcodeToString[in.Rcode], len(in.Answer)+len(in.Ns)+len(in.Extra))
					}
				}
				if revoked[b] {
					continue
				}
				var want []string // "id@ip"
				for _, n := range nodes {
					switch {
					case n.removed || revoked[n.member] || n.role == "bootnode":
					case n.member == b:
						want = append(want, n.id.String()+"@"+n.priv)
					case n.role == "public":
						want = append(want, n.id.String()+"@"+n.pub)
					}
				}
				got, err := client(resolver{server: addr, from: from(b)}).SyncTree(tr.URL(names[b]))
				if err != nil {
					t.Fatalf("%s: SyncTree: %v", names[b], err)
				}
				var have []string
				for _, n := range got.Nodes() {
					have = append(have, n.ID().String()+"@"+n.IP().String())
					if ip := n.IP().To4(); ip[0] == 10 && int(ip[1]) != b+1 {
						t.Errorf("%s's tree holds member m%d's private endpoint %s", names[b], ip[1]-1, ip)
					}
				}
				checked += len(have)
				slices.Sort(want)
				slices.Sort(have)
				if !slices.Equal(want, have) {
					t.Errorf("%s's tree:\n have %v\n want %v", names[b], have, want)
				}
			}
		})
	}
}

func count(bs []bool) (n int) {
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
