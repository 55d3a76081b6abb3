package dnstree

import (
	"strings"

	"github.com/miekg/dns"
)

// The reply rules, in order (each is a row of answer_test.go):
//   - not a standard query (opcode), or not exactly one question: NOTIMP
//     or FORMERR, no records;
//   - a class other than IN, a name outside every member zone, a zone the
//     source may not read, or a member with no tree: REFUSED, no records.
//     The last three are the same answer on purpose: a probe learns nothing
//     about which members exist;
//   - the apex: TXT is the tree's root; SOA and NS as an authoritative
//     server must answer them; ANY gets RFC 8482's one small HINFO; other
//     types NODATA (NOERROR, the SOA in the authority section);
//   - "<hash>.<apex>" of an entry of the tree: TXT is the entry, ANY the
//     HINFO, other types NODATA;
//   - any other name in the zone: NXDOMAIN with the zone's SOA, nothing else.
// Every reply is at most the size the client can take (512 bytes, or its
// EDNS0 size up to maxUDPSize); a larger one is truncated (TC), which sends
// the client to TCP.

// maxUDPSize is the largest UDP reply: the DNS flag day 2020 value, below
// any path's fragmentation point.
const maxUDPSize = 1232

// Outcome classifies a reply, for counters and tests.
type Outcome uint8

const (
	OutAnswer    Outcome = iota // records of the zone
	OutNoData                   // the name exists, the type does not
	OutNXDomain                 // a name inside a zone that does not exist
	OutRefused                  // outside every zone, or not for this source
	OutMalformed                // FORMERR or NOTIMP
	numOutcomes
)

// zoneTTLs are the TTLs of a zone's records.
type zoneTTLs struct {
	root, entry uint32 // the apex's TXT (changes) and the hashed entries (immutable)
	ns          string // the NS and SOA MNAME target, fully qualified
}

// answer builds the reply to req from snap. allowed says whether the
// querier may read member's zone. udpLimit is the size limit of the reply
// for a UDP query, 0 for TCP. It never fails: every path yields a reply.
func answer(req *dns.Msg, snap *snapshot, suffix string, allowed func(member string) bool, ttl zoneTTLs, udp bool) (*dns.Msg, Outcome) {
	m := new(dns.Msg)
	m.SetReply(req) // ID, opcode, RD, the question
	m.RecursionAvailable = false
	if req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeNotImplemented)
		m.Question = nil
		return m, OutMalformed
	}
	if len(req.Question) != 1 {
		m.SetRcode(req, dns.RcodeFormatError)
		m.Question = nil
		return m, OutMalformed
	}
	size := dns.MinMsgSize
	if opt := req.IsEdns0(); opt != nil {
		if opt.Version() != 0 {
			m.SetEdns0(maxUDPSize, false) // BADVERS is an extended rcode: it lives in the OPT
			m.Rcode = dns.RcodeBadVers
			m.Question = nil
			return m, OutMalformed
		}
		size = min(max(int(opt.UDPSize()), dns.MinMsgSize), maxUDPSize)
		m.SetEdns0(maxUDPSize, false)
	}
	out := resolve(m, req.Question[0], snap, suffix, allowed, ttl)
	if udp {
		m.Truncate(size)
	} else {
		m.Truncate(dns.MaxMsgSize)
	}
	return m, out
}

// resolve fills m's rcode and sections for question q.
func resolve(m *dns.Msg, q dns.Question, snap *snapshot, suffix string, allowed func(string) bool, ttl zoneTTLs) Outcome {
	refuse := func() Outcome {
		m.Rcode = dns.RcodeRefused
		return OutRefused
	}
	if q.Qclass != dns.ClassINET {
		return refuse()
	}
	name := strings.ToLower(q.Name)
	rest, ok := strings.CutSuffix(name, suffix)
	if !ok || rest == "" {
		return refuse()
	}
	label, member := "", rest
	if i := strings.LastIndexByte(rest, '.'); i >= 0 {
		label, member = rest[:i], rest[i+1:]
	}
	z := snap.zones[member]
	if z == nil || !allowed(member) {
		return refuse()
	}
	m.Authoritative = true
	soa := func() dns.RR {
		return &dns.SOA{
			Hdr:     dns.RR_Header{Name: dns.Fqdn(z.apex), Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl.root},
			Ns:      ttl.ns,
			Mbox:    "hostmaster." + dns.Fqdn(z.apex),
			Serial:  uint32(z.seq), // serial arithmetic (RFC 1982) tolerates the wrap
			Refresh: ttl.root, Retry: ttl.root, Expire: 7 * 24 * 3600,
			Minttl: ttl.root, // how long a resolver may cache NXDOMAIN and NODATA
		}
	}
	text, ok := z.txt[label]
	if !ok {
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa()}
		return OutNXDomain
	}
	hdr := func(t uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: q.Name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	switch {
	case q.Qtype == dns.TypeTXT:
		t := ttl.entry
		if label == "" {
			t = ttl.root
		}
		m.Answer = []dns.RR{&dns.TXT{Hdr: hdr(dns.TypeTXT, t), Txt: split255(text)}}
	case q.Qtype == dns.TypeANY:
		// RFC 8482: no list of everything, one small record instead.
		m.Answer = []dns.RR{&dns.HINFO{Hdr: hdr(dns.TypeHINFO, ttl.root), Cpu: "RFC8482"}}
	case q.Qtype == dns.TypeSOA && label == "":
		m.Answer = []dns.RR{soa()}
	case q.Qtype == dns.TypeNS && label == "":
		m.Answer = []dns.RR{&dns.NS{Hdr: hdr(dns.TypeNS, ttl.root), Ns: ttl.ns}}
	default:
		m.Ns = []dns.RR{soa()}
		return OutNoData
	}
	return OutAnswer
}

// split255 cuts a TXT text into the 255-byte character-strings one TXT
// record is made of; resolvers (Go's, so geth's) join them again.
func split255(s string) []string {
	var out []string
	for len(s) > 255 {
		out = append(out, s[:255])
		s = s[255:]
	}
	return append(out, s)
}
