package api

import (
	"net/http"
	"testing"
)

func TestBearer(t *testing.T) {
	for _, tc := range []struct {
		header, cred string
		ok           bool
	}{
		{"Bearer acme.secret", "acme.secret", true},
		{"", "", false},
		{"Basic YWNtZTpzZWNyZXQ=", "", false},
		{"Bearer", "", false},
	} {
		h := http.Header{}
		if tc.header != "" {
			h.Set("Authorization", tc.header)
		}
		if cred, ok := Bearer(h); cred != tc.cred || ok != tc.ok {
			t.Errorf("%q: %q %v, want %q %v", tc.header, cred, ok, tc.cred, tc.ok)
		}
	}
}
