package main

import (
	"errors"
	"testing"
)

func TestFirewallFlags(t *testing.T) {
	for _, tc := range []struct {
		kind, table, allow string
		on                 bool
		allowed            int
		usage              bool
	}{
		{"", "consortium_agent", "", false, 0, false},
		{"nftables", "consortium_agent", "", true, 0, false},
		{"nftables", "consortium_agent", "10.0.0.0/8, 192.0.2.7,2001:db8::1", true, 3, false},
		{"", "consortium_agent", "10.0.0.0/8", false, 0, true},
		{"iptables", "consortium_agent", "", false, 0, true},
		{"nftables", "bad name", "", false, 0, true},
		{"nftables", "consortium_agent", "10.0.0.0/33", false, 0, true},
	} {
		fc, err := firewallFlags(tc.kind, tc.table, tc.allow)
		if tc.usage {
			if !errors.Is(err, errUsage) {
				t.Errorf("%q %q %q: err %v, want a usage error", tc.kind, tc.table, tc.allow, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q %q %q: %v", tc.kind, tc.table, tc.allow, err)
			continue
		}
		if (fc.fw != nil) != tc.on || len(fc.allow) != tc.allowed {
			t.Errorf("%q %q %q: firewall %v, %d allowed; want %v, %d", tc.kind, tc.table, tc.allow, fc.fw != nil, len(fc.allow), tc.on, tc.allowed)
		}
	}
}
