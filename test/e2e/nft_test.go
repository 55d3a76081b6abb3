//go:build e2e

package e2e

import (
	"net/netip"
	"strings"
	"testing"
)

// The table a-public-agent printed in the run of 2026-12-07 16:52: nft's
// auto-merge listed b's, c's and d's public nodes as one range.
const nftTable = `table inet consortium_agent {
	set peers4 {
		type ipv4_addr
		flags interval
		auto-merge
		elements = { 10.203.0.12-10.203.0.14, 10.203.1.11-10.203.1.12,
			     10.203.2.0/28, 10.203.3.7 }
	}

	set peers6 {
		type ipv6_addr
		flags interval
		auto-merge
	}
}`

func TestNftSetHas(t *testing.T) {
	for ip, want := range map[string]bool{
		"10.203.0.12": true, "10.203.0.13": true, "10.203.0.14": true, "10.203.0.11": false, "10.203.0.15": false,
		"10.203.1.12": true, "10.203.2.5": true, "10.203.2.16": false, "10.203.3.7": true, "10.203.3.70": false, "not-an-ip": false,
	} {
		if got := nftSetHas(nftTable, "peers4", ip); got != want {
			t.Errorf("peers4 has %s: %v, want %v", ip, got, want)
		}
	}
	if nftSetHas(nftTable, "peers6", "10.203.0.12") || nftSetHas(nftTable, "nope", "10.203.0.12") {
		t.Errorf("an address found in an empty or missing set")
	}
}

// FuzzNftSetHas: any table text and address, no panic; an address the
// set lists as a single element is found.
func FuzzNftSetHas(f *testing.F) {
	f.Add(nftTable, "10.203.0.13")
	f.Add("set peers4 { elements = { 1.2.3.4-", "1.2.3.4")
	f.Add("set peers4 {", "::1")
	f.Fuzz(func(t *testing.T, table, ip string) {
		nftSetHas(table, "peers4", ip)
		if _, err := netip.ParseAddr(ip); err == nil && ip == strings.TrimSpace(ip) && !strings.ContainsAny(ip, "{},-/%") {
			if !nftSetHas("set peers4 {\n\telements = { "+ip+" }\n}", "peers4", ip) {
				t.Errorf("%s not found as the set's only element", ip)
			}
		}
	})
}
