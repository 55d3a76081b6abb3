package httpapi_test

import (
	"testing"
	"time"

	"github.com/consortium/consortium/internal/api"
)

// A member rotates its credential over HTTP: 200 with the new credential
// (not cached), the old one accepted until the grace ends, then 401; the
// administrator's member list shows the grace.
func TestRotateCredentialHTTP(t *testing.T) {
	h := newHarness(t, opts{})
	a, b := consortium2(t, h)
	path := "/v1/members/alpha/credential"
	r := h.do("POST", path, a.cred, `{"grace":"1h"}`)
	h.expect(r, 200, "")
	if r.hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("Cache-Control %q", r.hdr.Get("Cache-Control"))
	}
	var rot api.CredentialRotated
	r.json(t, &rot)
	if rot.Name != "alpha" || rot.Credential == "" || rot.Credential == a.cred || rot.PreviousValidUntil == nil {
		t.Fatalf("answer %+v", rot)
	}
	for _, c := range []string{a.cred, rot.Credential} {
		h.expect(h.do("GET", "/v1/nodes/"+a.val.id+"/peers", c, nil), 200, "")
	}
	var ms api.MemberList
	h.do("GET", "/v1/members", h.Admin, nil).json(t, &ms)
	if ms.Members[0].Name != "alpha" || ms.Members[0].PreviousCredentialUntil == nil {
		t.Fatalf("members %+v", ms.Members)
	}

	// Refused, and nothing changes: both credentials still work after each.
	for _, tc := range []struct {
		name, path, cred, body string
		status                 int
		code                   string
	}{
		{"another member's", path, b.cred, ``, 403, api.CodeForbidden},
		{"with the replaced credential", path, a.cred, ``, 403, api.CodeForbidden},
		{"bad grace", path, rot.Credential, `{"grace":"a day"}`, 400, api.CodeInvalid},
		{"grace over a week", path, rot.Credential, `{"grace":"200h"}`, 400, api.CodeInvalid},
		{"unknown field", path, rot.Credential, `{"grace":"1h","ttl":"1h"}`, 400, api.CodeBadJSON},
		{"no credential", path, "", ``, 401, api.CodeUnauthenticated},
		{"unknown member", "/v1/members/nobody/credential", h.Admin, ``, 404, api.CodeNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h.expect(h.do("POST", tc.path, tc.cred, tc.body), tc.status, tc.code)
			h.expect(h.do("GET", "/v1/whoami", a.cred, nil), 200, "")
			h.expect(h.do("GET", "/v1/whoami", rot.Credential, nil), 200, "")
		})
	}

	h.clock.Advance(time.Hour)
	h.expect(h.do("GET", "/v1/nodes/"+a.val.id+"/peers", a.cred, nil), 401, api.CodeUnauthenticated)
	h.expect(h.do("GET", "/v1/nodes/"+a.val.id+"/peers", rot.Credential, nil), 200, "")

	// The administrator rotates beta's (beta lost it), with no grace: the
	// old credential is refused at once. An empty body means the default.
	r = h.do("POST", "/v1/members/beta/credential", h.Admin, `{"grace":"0s"}`)
	h.expect(r, 200, "")
	var byAdmin api.CredentialRotated
	r.json(t, &byAdmin)
	if byAdmin.PreviousValidUntil != nil {
		t.Fatalf("grace 0: %+v", byAdmin)
	}
	h.expect(h.do("GET", "/v1/whoami", b.cred, nil), 401, api.CodeUnauthenticated)
	r = h.do("POST", "/v1/members/beta/credential", byAdmin.Credential, nil)
	h.expect(r, 200, "")
	var def api.CredentialRotated
	r.json(t, &def)
	if def.PreviousValidUntil == nil || !def.PreviousValidUntil.Equal(h.clock.Now().UTC().Add(24*time.Hour)) {
		t.Fatalf("default grace: %+v", def)
	}
}
