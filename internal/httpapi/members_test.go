package httpapi_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/registry"
)

func TestMembersLifecycle(t *testing.T) {
	h := newHarness(t, opts{})
	acme := h.addMember("acme")
	if !strings.HasPrefix(acme, "acme.") {
		t.Fatalf("credential %q", acme)
	}
	h.expect(h.do("POST", "/v1/members", h.Admin, map[string]string{"name": "acme"}), 409, "member_exists")
	beta := h.addMember("beta")

	r := h.do("GET", "/v1/members", h.Admin, nil)
	h.expect(r, 200, "")
	var list struct{ Members []registry.MemberView }
	r.json(t, &list)
	if len(list.Members) != 2 || list.Members[0].Name != "acme" || list.Members[1].Name != "beta" {
		t.Fatalf("members %+v", list.Members)
	}
	if bytes.Contains(r.body, []byte(strings.SplitN(acme, ".", 2)[1])) {
		t.Fatal("member list shows a credential")
	}

	// Members are not administrators.
	h.expect(h.do("GET", "/v1/members", acme, nil), 403, "forbidden")
	h.expect(h.do("POST", "/v1/members", acme, map[string]string{"name": "evil"}), 403, "forbidden")
	h.expect(h.do("DELETE", "/v1/members/beta", acme, nil), 403, "forbidden")

	h.expect(h.do("GET", "/v1/whoami", acme, nil), 200, "")
	h.expect(h.do("DELETE", "/v1/members/acme", h.Admin, nil), 200, "")
	h.expect(h.do("DELETE", "/v1/members/acme", h.Admin, nil), 200, "") // idempotent
	h.expect(h.do("GET", "/v1/whoami", acme, nil), 401, "revoked")
	h.expect(h.do("GET", "/v1/whoami", beta, nil), 200, "")
	h.expect(h.do("DELETE", "/v1/members/nobody", h.Admin, nil), 404, "not_found")
}

func TestCredentialsAreCheckedAndStoredAsHashes(t *testing.T) {
	h := newHarness(t, opts{})
	acme := h.addMember("acme")
	secret := strings.SplitN(acme, ".", 2)[1]
	adminSecret := strings.SplitN(h.Admin, ".", 2)[1]
	flip := "A"
	if secret[42] == 'A' {
		flip = "B"
	}
	for _, bad := range []string{
		"", "acme", "acme." + secret[:42] + flip, "beta." + secret, "admin." + secret, strings.ToUpper(acme),
	} {
		h.expect(h.do("GET", "/v1/nodes", bad, nil), 401, "")
	}
	h.expect(h.do("GET", "/v1/nodes", acme, nil), 200, "")
	// Neither secret appears anywhere on disk.
	files, _ := filepath.Glob(filepath.Join(h.Dir, "*"))
	if len(files) == 0 {
		t.Fatal("no files in data dir")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(adminSecret)) {
			t.Fatalf("%s holds a credential secret in clear", f)
		}
	}
}

func TestMemberNameValidation(t *testing.T) {
	h := newHarness(t, opts{})
	for _, name := range []string{"Acme", "a,b", "a\nb", "admin", "", "a.b", "x y", strings.Repeat("a", 40)} {
		r := h.do("POST", "/v1/members", h.Admin, map[string]string{"name": name})
		h.expect(r, 400, "")
	}
	r := h.do("GET", "/v1/members", h.Admin, nil)
	if !bytes.Contains(r.body, []byte(`"members":[]`)) {
		t.Fatalf("refused names were stored: %s", r.body)
	}
}
