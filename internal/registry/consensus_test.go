package registry

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/noderecord"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/enr"
)

// cmtENR signs a record at ip:30303 that names a CometBFT endpoint (the
// "cmt" entry) with ID byte b on port cmtPort; cmtPort 0 leaves it out.
func cmtENR(t *testing.T, key *ecdsa.PrivateKey, seq uint64, ip string, b byte, cmtPort uint16) string {
	t.Helper()
	var r enr.Record
	r.SetSeq(seq)
	r.Set(enr.IP(net.ParseIP(ip)))
	r.Set(enr.TCP(30303))
	r.Set(enr.UDP(30303))
	if cmtPort != 0 {
		r.Set(noderecord.Consensus{ID: bytes.Repeat([]byte{b}, noderecord.ConsensusIDLen), Port: cmtPort})
	}
	if err := enode.SignV4(&r, key); err != nil {
		t.Fatal(err)
	}
	n, err := enode.New(enode.ValidSchemes, &r)
	if err != nil {
		t.Fatal(err)
	}
	return n.String()
}

// sortOwn sorts the private addresses (10.*) at the head of a consensus
// list and leaves the other members' public ones after them in order.
func sortOwn(l []string) []string {
	l = slices.Clone(l)
	i := 0
	for i < len(l) && strings.Contains(l[i], "@10.") {
		i++
	}
	slices.Sort(l[:i])
	return l
}

func cmtAddr(b byte, ipPort string) string {
	return strings.Repeat(string("0123456789abcdef"[b>>4])+string("0123456789abcdef"[b&15]), noderecord.ConsensusIDLen) + "@" + ipPort
}

// The consensus list carries the CometBFT addresses of the static peers
// whose records have one, at the endpoint the static list uses: a member's
// own nodes privately, another member's public node publicly, and never
// another member's private consensus address.
func TestConsensusPeers(t *testing.T) {
	p := newPop(t, "a", "b")
	ctx := context.Background()
	reg := func(member, role string, key *ecdsa.PrivateKey, seq uint64, ip, pub string, b byte, port, pubPort uint16) {
		t.Helper()
		rg := Registration{Role: role, ENR: cmtENR(t, key, seq, ip, b, port)}
		if pub != "" {
			rg.PublicENR = cmtENR(t, key, seq, pub, b, pubPort)
		}
		if _, _, err := p.r.Register(ctx, Principal{Name: member}, rg); err != nil {
			t.Fatalf("registering %s %s: %v", member, role, err)
		}
	}
	aVal, aPub, aTx := newNode(t, "a", "validator"), newNode(t, "a", "public"), newNode(t, "a", "tx")
	bPub := newNode(t, "b", "public")
	reg("a", "validator", aVal.key, 1, "10.0.0.1", "", 0x11, 26656, 0)
	reg("a", "public", aPub.key, 1, "10.0.0.2", "198.51.100.2", 0x22, 26656, 36656)
	reg("a", "tx", aTx.key, 1, "10.0.0.3", "", 0, 0, 0) // no consensus process
	reg("b", "public", bPub.key, 1, "10.9.0.2", "198.51.100.9", 0x99, 26656, 46656)

	get := func(n *tnode) *PeerSet {
		t.Helper()
		ps, err := p.r.PeersFor(Principal{Name: n.member}, n.id)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	want := map[*tnode][]string{
		aVal: {cmtAddr(0x22, "10.0.0.2:26656")},
		aTx:  {cmtAddr(0x11, "10.0.0.1:26656"), cmtAddr(0x22, "10.0.0.2:26656")},
		aPub: {cmtAddr(0x11, "10.0.0.1:26656"), cmtAddr(0x99, "198.51.100.9:46656")},
		bPub: {cmtAddr(0x22, "198.51.100.2:36656")},
	}
	for n, w := range want {
		ps := get(n)
		// The member's own nodes come sorted by enode URL, which
		// follows their random keys: compare them as a set.
		if !slices.Equal(sortOwn(ps.Consensus), sortOwn(w)) {
			t.Errorf("%s %s: consensus %q, want %q", n.member, n.role, ps.Consensus, w)
		}
		for _, c := range ps.Consensus {
			if n.member == "b" && strings.Contains(c, "@10.") {
				t.Errorf("b sees a's private consensus address %s", c)
			}
		}
	}
	rs, err := p.r.PeersForRole(Principal{Name: "b"}, "public")
	if err != nil {
		t.Fatal(err)
	}
	if w := []string{cmtAddr(0x99, "10.9.0.2:26656"), cmtAddr(0x22, "198.51.100.2:36656")}; !slices.Equal(sortOwn(rs.Consensus), w) {
		t.Errorf("b's role set: consensus %q, want %q", rs.Consensus, w)
	}

	// A new consensus port, nothing else: the answer and its ETag change.
	before := get(bPub)
	reg("a", "public", aPub.key, 2, "10.0.0.2", "198.51.100.2", 0x22, 26656, 36657)
	after := get(bPub)
	if after.ETag == before.ETag || !slices.Equal(after.Consensus, []string{cmtAddr(0x22, "198.51.100.2:36657")}) {
		t.Fatalf("after a new public consensus port: %q (ETag %s, before %s)", after.Consensus, after.ETag, before.ETag)
	}
}
