package dnstree

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/miekg/dns"
)

// answerFixture: members a (two nodes) and b (one), a querier allowed a
// only.
func answerFixture(t *testing.T) (*Trees, *zone) {
	src := newFakeSource()
	src.set("a", []*enode.Node{node(t, "10.1.0.1", 30303, 0), node(t, "10.1.0.2", 30303, 0)})
	src.set("b", []*enode.Node{node(t, "10.2.0.1", 30303, 0)})
	tr := newTrees(t, src)
	if err := tr.Update(); err != nil {
		t.Fatal(err)
	}
	return tr, tr.cur.Load().zones["a"]
}

func TestAnswer(t *testing.T) {
	tr, za := answerFixture(t)
	var hash string // one entry of a's tree
	for rel := range za.txt {
		if rel != "" {
			hash = strings.ToUpper(rel)
			break
		}
	}
	ttl := zoneTTLs{root: 60, entry: 3600, ns: "ns.nodes.example."}
	allowed := func(m string) bool { return m == "a" }
	q := func(name string, qtype uint16) *dns.Msg {
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		return m
	}
	tests := []struct {
		name   string
		req    *dns.Msg
		rcode  int
		out    Outcome
		answer uint16 // type of the one answer record; 0 for none
		soa    bool   // the zone's SOA in the authority section
	}{
		{"root TXT", q("a.nodes.example.", dns.TypeTXT), dns.RcodeSuccess, OutAnswer, dns.TypeTXT, false},
		{"root TXT, any case", q("A.Nodes.EXAMPLE.", dns.TypeTXT), dns.RcodeSuccess, OutAnswer, dns.TypeTXT, false},
		{"entry TXT", q(hash+".a.nodes.example.", dns.TypeTXT), dns.RcodeSuccess, OutAnswer, dns.TypeTXT, false},
		{"entry TXT, lower case", q(strings.ToLower(hash)+".a.nodes.example.", dns.TypeTXT), dns.RcodeSuccess, OutAnswer, dns.TypeTXT, false},
		{"apex SOA", q("a.nodes.example.", dns.TypeSOA), dns.RcodeSuccess, OutAnswer, dns.TypeSOA, false},
		{"apex NS", q("a.nodes.example.", dns.TypeNS), dns.RcodeSuccess, OutAnswer, dns.TypeNS, false},
		{"apex A: NODATA", q("a.nodes.example.", dns.TypeA), dns.RcodeSuccess, OutNoData, 0, true},
		{"entry AAAA: NODATA", q(hash+".a.nodes.example.", dns.TypeAAAA), dns.RcodeSuccess, OutNoData, 0, true},
		{"ANY: one HINFO (RFC 8482)", q("a.nodes.example.", dns.TypeANY), dns.RcodeSuccess, OutAnswer, dns.TypeHINFO, false},
		{"unknown name in zone: NXDOMAIN", q("nothere.a.nodes.example.", dns.TypeTXT), dns.RcodeNameError, OutNXDomain, 0, true},
		{"deeper name: NXDOMAIN", q("x."+hash+".a.nodes.example.", dns.TypeTXT), dns.RcodeNameError, OutNXDomain, 0, true},
		{"other member's zone: REFUSED", q("b.nodes.example.", dns.TypeTXT), dns.RcodeRefused, OutRefused, 0, false},
		{"unknown member: REFUSED", q("zz.nodes.example.", dns.TypeTXT), dns.RcodeRefused, OutRefused, 0, false},
		{"the parent: REFUSED", q("nodes.example.", dns.TypeTXT), dns.RcodeRefused, OutRefused, 0, false},
		{"outside: REFUSED", q("example.com.", dns.TypeA), dns.RcodeRefused, OutRefused, 0, false},
		{"root name: REFUSED", q(".", dns.TypeNS), dns.RcodeRefused, OutRefused, 0, false},
		{"suffix lookalike: REFUSED", q("a.nodes.example.evil.", dns.TypeTXT), dns.RcodeRefused, OutRefused, 0, false},
		{"class CH: REFUSED", func() *dns.Msg { m := q("version.bind.", dns.TypeTXT); m.Question[0].Qclass = dns.ClassCHAOS; return m }(), dns.RcodeRefused, OutRefused, 0, false},
		{"no question: FORMERR", func() *dns.Msg { m := q("a.nodes.example.", dns.TypeTXT); m.Question = nil; return m }(), dns.RcodeFormatError, OutMalformed, 0, false},
		{"two questions: FORMERR", func() *dns.Msg {
			m := q("a.nodes.example.", dns.TypeTXT)
			m.Question = append(m.Question, m.Question[0])
			return m
		}(), dns.RcodeFormatError, OutMalformed, 0, false},
		{"UPDATE: NOTIMP", func() *dns.Msg { m := q("a.nodes.example.", dns.TypeTXT); m.Opcode = dns.OpcodeUpdate; return m }(), dns.RcodeNotImplemented, OutMalformed, 0, false},
		{"EDNS version 1: BADVERS", func() *dns.Msg {
			m := q("a.nodes.example.", dns.TypeTXT)
			m.SetEdns0(1232, false)
			m.IsEdns0().SetVersion(1)
			return m
		}(), dns.RcodeBadVers, OutMalformed, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, out := answer(tc.req, tr.cur.Load(), tr.suffix, allowed, ttl, true)
			if _, err := resp.Pack(); err != nil {
				t.Fatalf("reply does not pack: %v", err)
			}
			if resp.Rcode != tc.rcode || out != tc.out {
				t.Fatalf("rcode %s outcome %d, want %s %d", dns.RcodeToString[resp.Rcode], out, dns.RcodeToString[tc.rcode], tc.out)
			}
			if resp.Id != tc.req.Id || !resp.Response || resp.RecursionAvailable {
				t.Errorf("header: id %d (want %d) qr %v ra %v", resp.Id, tc.req.Id, resp.Response, resp.RecursionAvailable)
			}
			switch {
			case tc.answer == 0 && len(resp.Answer) != 0:
				t.Errorf("answers %v, want none", resp.Answer)
			case tc.answer != 0 && (len(resp.Answer) != 1 || resp.Answer[0].Header().Rrtype != tc.answer):
				t.Errorf("answers %v, want one %s", resp.Answer, dns.TypeToString[tc.answer])
			}
			if tc.answer != 0 && !strings.EqualFold(resp.Answer[0].Header().Name, tc.req.Question[0].Name) {
				t.Errorf("answer name %s, want the question's", resp.Answer[0].Header().Name)
			}
			if tc.soa != (len(resp.Ns) == 1 && resp.Ns[0].Header().Rrtype == dns.TypeSOA) || (!tc.soa && len(resp.Ns) > 0) {
				t.Errorf("authority %v, want SOA: %v", resp.Ns, tc.soa)
			}
			if tc.out == OutRefused && (resp.Authoritative || len(resp.Extra) > 0) {
				t.Errorf("REFUSED carries AA or records: %v", resp)
			}
			if (tc.out == OutAnswer || tc.out == OutNoData || tc.out == OutNXDomain) && !resp.Authoritative {
				t.Error("an answer from the zone without AA")
			}
		})
	}
}

// TestAnswerTXTContent: the TXT record is the tree's entry, whole, in
// 255-byte strings, with the root's short TTL and the entries' long one.
func TestAnswerTXTContent(t *testing.T) {
	src := newFakeSource()
	src.set("a", []*enode.Node{node(t, "10.1.0.1", 30303, 150)}) // one long record: the root's e= points at it
	tr := newTrees(t, src)
	tr.Update()
	z := tr.cur.Load().zones["a"]
	ttl := zoneTTLs{root: 60, entry: 3600, ns: "ns."}
	for rel, text := range z.txt {
		name := "a.nodes.example."
		if rel != "" {
			name = rel + "." + name
		}
		req := new(dns.Msg)
		req.SetQuestion(name, dns.TypeTXT)
		req.SetEdns0(4096, false)
		resp, _ := answer(req, tr.cur.Load(), tr.suffix, func(string) bool { return true }, ttl, true)
		if len(resp.Answer) != 1 {
			t.Fatalf("%s: %v", name, resp)
		}
		txt := resp.Answer[0].(*dns.TXT)
		for _, s := range txt.Txt {
			if len(s) > 255 {
				t.Errorf("%s: a %d-byte character-string", name, len(s))
			}
		}
		if strings.Join(txt.Txt, "") != text {
			t.Errorf("%s: TXT %q, want %q", name, strings.Join(txt.Txt, ""), text)
		}
		want := uint32(3600)
		if rel == "" {
			want = 60
		}
		if txt.Hdr.Ttl != want {
			t.Errorf("%s: TTL %d, want %d", name, txt.Hdr.Ttl, want)
		}
	}
}

// TestAnswerTruncates: a reply larger than the client's UDP size is cut
// with TC set (the client retries over TCP), never sent oversized; over
// TCP it is whole.
func TestAnswerTruncates(t *testing.T) {
	tr, za := answerFixture(t)
	za.txt["big"] = strings.Repeat("x", 1500)
	for _, tc := range []struct {
		edns    uint16
		udp     bool
		limit   int
		wantTC  bool
		answers int
	}{
		{0, true, 512, true, 0},
		{4096, true, maxUDPSize, true, 0},
		{0, false, dns.MaxMsgSize, false, 1},
	} {
		req := new(dns.Msg)
		req.SetQuestion("big.a.nodes.example.", dns.TypeTXT)
		if tc.edns > 0 {
			req.SetEdns0(tc.edns, false)
		}
		resp, _ := answer(req, tr.cur.Load(), tr.suffix, func(string) bool { return true }, zoneTTLs{60, 60, "ns."}, tc.udp)
		b, err := resp.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > tc.limit || resp.Truncated != tc.wantTC || len(resp.Answer) != tc.answers {
			t.Errorf("edns %d udp %v: %d bytes, TC %v, %d answers", tc.edns, tc.udp, len(b), resp.Truncated, len(resp.Answer))
		}
	}
}

func TestAccess(t *testing.T) {
	nets := AllowNets(map[string][]netip.Prefix{"a": {netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00:1::/32")}})
	for _, tc := range []struct {
		f      AccessFunc
		member string
		src    string
		want   bool
	}{
		{LoopbackOnly, "a", "127.0.0.1", true},
		{LoopbackOnly, "a", "::1", true},
		{LoopbackOnly, "a", "::ffff:127.0.0.1", true},
		{LoopbackOnly, "a", "10.1.0.5", false},
		{nets, "a", "10.1.2.3", true},
		{nets, "a", "::ffff:10.1.2.3", true},
		{nets, "a", "fd00:1::5", true},
		{nets, "a", "10.2.0.1", false},
		{nets, "b", "10.1.2.3", false},
		{nets, "a", "127.0.0.1", false},
		{AllowAll, "b", "192.0.2.1", true},
	} {
		if got := tc.f(tc.member, netip.MustParseAddr(tc.src)); got != tc.want {
			t.Errorf("member %s from %s: %v, want %v", tc.member, tc.src, got, tc.want)
		}
	}
}
