package hatest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
)

// TestRestartAllReplicas writes through every replica (registrations, a
// member added and a member revoked by the administrator), SIGKILLs all
// three replicas at once and starts them again on the same etcd cluster:
// every acknowledged record, the new member (its credential works) and the
// revocation (the credential is refused) are there on every replica.
func TestRestartAllReplicas(t *testing.T) {
	began := time.Now()
	ps := newProcs(t)
	ec := startEtcd(t, ps, 3)
	sd := writeSeed(t, "acme", "globex")
	rs := startReplicas(t, ps, 3, ec.storeURL(), sd)

	// A member added through one replica, another revoked through the next.
	code, body, err := do("POST", rs[1].url()+"/v1/members", sd.admin, []byte(`{"name":"initech"}`))
	if err != nil || code != http.StatusCreated {
		t.Fatalf("adding initech through %s: %d %s %v", rs[1].name, code, body, err)
	}
	var mc httpapi.MemberCreated
	if err := json.Unmarshal(body, &mc); err != nil {
		t.Fatal(err)
	}
	creds := map[string]string{"acme": sd.members["acme"], "globex": sd.members["globex"], "initech": mc.Credential}
	// The other replicas learn of initech through etcd's watch; until then
	// they refuse its credential (401, which a client does not take to
	// another replica).
	addedAt := time.Now()
	for _, r := range rs {
		testutil.Eventually(t, 10*time.Second, fmt.Sprintf("%s accepting initech's credential created through %s", r.name, rs[1].name), func() error {
			code, body, err := get(r.url()+"/v1/whoami", mc.Credential)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("%d %s", code, body)
			}
			return err
		})
	}
	t.Logf("initech's credential accepted by every replica %s after its creation was acknowledged", ms(time.Since(addedAt)))

	// Registrations through every replica, for each member, acknowledged.
	const n = 90
	acked := map[string]string{}
	names := []string{"acme", "globex", "initech"}
	for i := range n {
		r, m := rs[i%3], names[(i/3)%3]
		x := newNode(t, m, []string{"tx", "public", "validator"}[i%3], 20+(i/3)%3, i)
		code, body, err := register(r.url(), creds[m], x.req)
		if err != nil || code != http.StatusCreated {
			t.Fatalf("registration %d through %s: %d %s %v", i, r.name, code, body, err)
		}
		acked[x.id] = m
	}
	code, body, err = do("DELETE", rs[2].url()+"/v1/members/globex", sd.admin, nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("revoking globex through %s: %d %s %v", rs[2].name, code, body, err)
	}
	t.Logf("%d registrations, initech added through %s, globex revoked through %s: all acknowledged", n, rs[1].name, rs[2].name)

	for _, r := range rs {
		r.p.Kill()
	}
	t.Logf("SIGKILLed the 3 replicas")
	restartAt := time.Now()
	for _, r := range rs {
		r.start(t, ps)
	}
	for _, r := range rs {
		r.waitReady(t)
	}
	t.Logf("3 replicas ready again %s after the restart began", time.Since(restartAt).Round(time.Millisecond))

	checkPresent(t, rs, sd.admin, acked)
	for _, r := range rs {
		code, body, err := get(r.url()+"/v1/members", sd.admin)
		if err != nil || code != http.StatusOK {
			t.Errorf("%s: members: %d %s %v", r.name, code, body, err)
			continue
		}
		var ms struct {
			Members []registry.MemberView `json:"members"`
		}
		if err := json.Unmarshal(body, &ms); err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, m := range ms.Members {
			got[m.Name] = fmt.Sprintf("revoked=%v nodes=%d", m.Revoked, m.Nodes)
		}
		want := map[string]string{"acme": "revoked=false nodes=30", "globex": "revoked=true nodes=30", "initech": "revoked=false nodes=30"}
		for name, w := range want {
			if got[name] != w {
				t.Errorf("%s: member %s: %q, want %q", r.name, name, got[name], w)
			}
		}
		if code, body, _ := get(r.url()+"/v1/whoami", creds["initech"]); code != http.StatusOK {
			t.Errorf("%s: initech's credential refused: %d %s", r.name, code, body)
		}
		var eb httpapi.ErrorBody
		code, body, _ = get(r.url()+"/v1/whoami", creds["globex"])
		if json.Unmarshal(body, &eb); code != http.StatusUnauthorized || eb.Code != "revoked" {
			t.Errorf("%s: globex's revoked credential: %d %s, want 401 revoked", r.name, code, body)
		}
	}
	t.Logf("members after the restart, on every replica: acme, initech (credential accepted), globex (401 revoked)")
	t.Logf("runtime %s", time.Since(began).Round(time.Millisecond))
}
