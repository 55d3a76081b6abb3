package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/registry"
)

// refRender is how a peer set was rendered before answers were spliced out
// of their group's rendering: the whole set, marshalled or joined at once.
func refRender(ps *registry.PeerSet, format string) []byte {
	switch format {
	case "bootnodes":
		return []byte(strings.Join(ps.Bootnodes, ",") + "\n")
	case "enr":
		if len(ps.ENRs) == 0 {
			return []byte{}
		}
		return []byte(strings.Join(ps.ENRs, "\n") + "\n")
	case "toml":
		return []byte(api.GethConfig{Static: ps.Static, Trusted: ps.Trusted, Bootnodes: ps.Bootnodes}.Render())
	}
	b, _ := json.Marshal(ps)
	return append(b, '\n')
}

// Every node's answer, in every format, is byte for byte the rendering of
// its whole set: whether its own entry is first, in the middle, last, the
// only one, or absent from its group's lists.
func TestPeerRenderingsMatchReference(t *testing.T) {
	h := newHarness(t, opts{})
	type mnode struct {
		member, cred string
		n            *testNode
	}
	var all []mnode
	creds := map[string]string{}
	for i, spec := range []struct {
		name  string
		roles []string
	}{
		{"alpha", []string{"bootnode", "bootnode", "bootnode", "validator", "tx", "tx", "tx", "public", "public"}},
		{"beta", []string{"public", "public", "tx"}},
		{"gamma", []string{"bootnode", "tx"}},
		{"delta", []string{"public"}},
		{"empty", nil},
	} {
		cred := h.addMember(spec.name)
		creds[spec.name] = cred
		for j, role := range spec.roles {
			pub := ""
			if role == "public" {
				pub = fmt.Sprintf("203.0.113.%d", 10*i+j+1)
			}
			n := newNode(t, role, fmt.Sprintf("10.%d.0.%d", i+1, j+1), pub)
			if j%2 == 0 && role != "bootnode" {
				n.cmt = uint16(26656 + j) // some run a consensus process
			}
			h.mustRegister(cred, n)
			all = append(all, mnode{spec.name, cred, n})
		}
	}
	formats := []string{"json", "bootnodes", "toml", "enr"}
	check := func(name, path, cred string, want *registry.PeerSet) {
		t.Helper()
		for _, f := range formats {
			r := h.do("GET", path+"format="+f, cred, nil)
			h.expect(r, 200, "")
			if got, ref := string(r.body), string(refRender(want, f)); got != ref {
				t.Errorf("%s, format=%s:\n got  %q\n want %q", name, f, got, ref)
			}
			if r.hdr.Get("ETag") != want.ETag || r.hdr.Get("X-Consortium-Index") != strconv.FormatUint(want.Index, 10) {
				t.Errorf("%s, format=%s: ETag %s index %s, want %s %d", name, f, r.hdr.Get("ETag"), r.hdr.Get("X-Consortium-Index"), want.ETag, want.Index)
			}
			if r.hdr.Get("Content-Length") != strconv.Itoa(len(r.body)) {
				t.Errorf("%s, format=%s: Content-Length %s for %d bytes", name, f, r.hdr.Get("Content-Length"), len(r.body))
			}
		}
	}
	for _, m := range all {
		want, err := h.Registry.PeersFor(registry.Principal{Name: m.member}, m.n.id)
		if err != nil {
			t.Fatal(err)
		}
		check(m.member+" "+m.n.role+" "+m.n.ip, "/v1/nodes/"+m.n.id+"/peers?", m.cred, want)
	}
	// A role's set names no node and leaves nothing out.
	for member, cred := range creds {
		for _, role := range []string{"bootnode", "validator", "tx", "public"} {
			want, err := h.Registry.PeersForRole(registry.Principal{Name: member}, role)
			if err != nil {
				t.Fatal(err)
			}
			check(member+" new "+role, "/v1/peers?role="+role+"&", cred, want)
		}
	}
}
