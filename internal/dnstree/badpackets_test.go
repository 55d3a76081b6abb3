package dnstree

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/miekg/dns"
)

// TestServerBadPackets: over real UDP, malformed, truncated and oversized
// packets get no reply or a reply no larger than themselves (nothing to
// amplify), and the server keeps answering.
func TestServerBadPackets(t *testing.T) {
	src := newFakeSource()
	src.set("a", []*enode.Node{node(t, "10.1.0.1", 30303, 150)})
	tr := newTrees(t, src)
	tr.Update()
	srv, addr := serve(t, tr, ServerConfig{RatePerSecond: 1e6, RateBurst: 1e6})

	good := new(dns.Msg)
	good.SetQuestion("a.nodes.example.", dns.TypeTXT)
	goodWire, _ := good.Pack()
	big := new(dns.Msg)
	big.SetQuestion("a.nodes.example.", dns.TypeTXT)
	big.SetEdns0(4096, false)
	big.IsEdns0().Option = append(big.IsEdns0().Option, &dns.EDNS0_LOCAL{Code: 65001, Data: make([]byte, 1500)})
	bigWire, _ := big.Pack()
	resp := new(dns.Msg)
	resp.SetQuestion("a.nodes.example.", dns.TypeTXT)
	resp.Response = true
	respWire, _ := resp.Pack()
	outside := new(dns.Msg)
	outside.SetQuestion("example.com.", dns.TypeANY)
	outsideWire, _ := outside.Pack()

	packets := map[string][]byte{
		"empty":                        {},
		"half a header":                goodWire[:6],
		"header only, one question":    goodWire[:12],
		"question cut in its name":     goodWire[:20],
		"question cut before its type": goodWire[:len(goodWire)-3],
		"garbage":                      bytes.Repeat([]byte{0xff}, 300),
		"64 KB of garbage":             bytes.Repeat([]byte{0x5a}, 65000),
		"a query with 1.5 KB of EDNS":  bigWire,
		"a response (QR set)":          respWire,
		"ANY outside the zones":        outsideWire,
		"a name compression loop":      append(append([]byte{}, goodWire[:12]...), 0xc0, 12, 0, 16, 0, 1),
	}
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 65536)
	for name, p := range packets {
		if _, err := conn.Write(p); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, err := conn.Read(buf)
		if err != nil {
			t.Logf("%s (%d bytes): no reply", name, len(p))
			continue
		}
		reply := new(dns.Msg)
		rerr := reply.Unpack(buf[:n])
		t.Logf("%s (%d bytes): a %d-byte reply, %s", name, len(p), n, rcode(reply, rerr))
		if n > len(p) && len(p) < 512 {
			t.Errorf("%s: a %d-byte reply to %d bytes", name, n, len(p))
		}
		if n > maxUDPSize {
			t.Errorf("%s: a %d-byte UDP reply", name, n)
		}
		if rerr == nil && len(reply.Answer)+len(reply.Ns) > 0 {
			t.Errorf("%s: records in the reply: %v", name, reply)
		}
	}
	if _, err := (resolver{server: addr}).LookupTXT(context.Background(), "a.nodes.example"); err != nil {
		t.Errorf("a good query after the bad ones: %v", err)
	}
	t.Logf("stats %+v", srv.Stats())
}

func rcode(m *dns.Msg, err error) string {
	if err != nil {
		return "undecodable"
	}
	return dns.RcodeToString[m.Rcode]
}
