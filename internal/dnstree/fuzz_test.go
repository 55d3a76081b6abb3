package dnstree

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/miekg/dns"
)

// FuzzServeDNS feeds arbitrary packets through what the server does with
// one: the header check (accept), decoding, and ServeDNS over UDP and TCP.
// A reply must pack, carry the query's ID, fit the UDP limit, and carry no
// record when it is REFUSED or a format error.
func FuzzServeDNS(f *testing.F) {
	src := newFakeSource()
	key := testKey(f)
	src.set("acme", []*enode.Node{nodeFor(f, key, "10.1.0.1", 30303, 0), node(f, "10.1.0.2", 30304, 150)})
	src.set("other", []*enode.Node{node(f, "10.2.0.1", 30303, 0)})
	tr := newTrees(f, src)
	if err := tr.Update(); err != nil {
		f.Fatal(err)
	}
	srv := NewServer(tr, ServerConfig{Logger: quiet, Access: func(m string, _ netip.Addr) bool { return m == "acme" }})
	var hash string
	for rel := range tr.cur.Load().zones["acme"].txt {
		if rel != "" {
			hash = strings.ToUpper(rel)
		}
	}
	for _, name := range []string{"acme.nodes.example.", hash + ".acme.nodes.example.", "other.nodes.example.", "x.acme.nodes.example.", "example.com.", "."} {
		for _, qt := range []uint16{dns.TypeTXT, dns.TypeANY, dns.TypeSOA, dns.TypeA} {
			m := new(dns.Msg)
			m.SetQuestion(name, qt)
			b, _ := m.Pack()
			f.Add(b)
			m.SetEdns0(4096, true)
			b, _ = m.Pack()
			f.Add(b)
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 12))
	f.Add([]byte{0, 1, 0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0}) // a response

	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 12 {
			return // miekg drops anything shorter than a header unread
		}
		h := dns.Header{
			Id: binary.BigEndian.Uint16(b), Bits: binary.BigEndian.Uint16(b[2:]),
			Qdcount: binary.BigEndian.Uint16(b[4:]), Ancount: binary.BigEndian.Uint16(b[6:]),
			Nscount: binary.BigEndian.Uint16(b[8:]), Arcount: binary.BigEndian.Uint16(b[10:]),
		}
		if accept(h) != dns.MsgAccept {
			return // dropped, or miekg's own FORMERR/NOTIMP of the header
		}
		req := new(dns.Msg)
		if err := req.Unpack(b); err != nil {
			return // miekg's own FORMERR
		}
		for _, udp := range []bool{true, false} {
			w := &recorder{udp: udp}
			srv.ServeDNS(w, req)
			if w.err != nil {
				t.Fatalf("reply does not pack: %v\nquery %v", w.err, req)
			}
			resp := w.msg
			if resp.Id != req.Id || !resp.Response {
				t.Fatalf("reply id %d qr %v to query %d", resp.Id, resp.Response, req.Id)
			}
			if udp && len(w.wire) > maxUDPSize {
				t.Fatalf("a %d-byte UDP reply", len(w.wire))
			}
			if rc := resp.Rcode; (rc == dns.RcodeRefused || rc == dns.RcodeFormatError) && len(resp.Answer)+len(resp.Ns) > 0 {
				t.Fatalf("%s with records: %v", dns.RcodeToString[rc], resp)
			}
			for _, rr := range resp.Answer {
				if !strings.HasSuffix(strings.ToLower(rr.Header().Name), "acme.nodes.example.") {
					t.Fatalf("an answer outside the allowed zone: %v", rr)
				}
			}
		}
	})
}

// recorder is a dns.ResponseWriter that keeps the packed reply.
type recorder struct {
	udp  bool
	msg  *dns.Msg
	wire []byte
	err  error
}

func (r *recorder) LocalAddr() net.Addr { return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 53} }
func (r *recorder) RemoteAddr() net.Addr {
	if r.udp {
		return &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
	}
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 5353}
}
func (r *recorder) WriteMsg(m *dns.Msg) error {
	r.msg = m
	r.wire, r.err = m.Pack()
	return r.err
}
func (r *recorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *recorder) Close() error                { return nil }
func (r *recorder) TsigStatus() error           { return nil }
func (r *recorder) TsigTimersOnly(bool)         {}
func (r *recorder) Hijack()                     {}
func (r *recorder) Network() string {
	if r.udp {
		return "udp"
	}
	return "tcp"
}
