package helm

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"
)

// A peer set as the registrar answers GET /v1/peers?role=public&format=json
// (docs/api.md): acme's own nodes at their pod addresses, and the other
// members' public nodes at their public endpoints, one of them twice (an
// IPv4-mapped address) and one IPv6. The compose e2e suite runs the same
// command against a real registrar (test/e2e, "allow-list as Helm values").
const peerSet = `{"index":7,"node":"0000000000000000000000000000000000000000000000000000000000000000","static":[` +
	`"enode://aa@10.42.0.11:30303","enode://bb@10.42.1.12:30303?discport=0",` +
	`"enode://cc@198.51.100.20:30303","enode://dd@203.0.113.7:30303","enode://ee@[::ffff:203.0.113.7]:30303",` +
	`"enode://ff@[2001:db8::5]:30303"],"bootnodes":[],"consensus":["x@198.51.100.20:26656"]}`

// buildAllowlist compiles ./cmd/allowlist once for the test.
func buildAllowlist(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "allowlist")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/allowlist").CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/allowlist: %v\n%s", err, out)
	}
	return bin
}

// TestNetworkPolicyFromAllowList: the allowlist command turns the
// registrar's allow-list into values, and the chart renders them as the
// public nodes' NetworkPolicy: the other members' public nodes admitted to
// geth's and CometBFT's ports, the member's own pod network left out.
func TestNetworkPolicyFromAllowList(t *testing.T) {
	bin := buildAllowlist(t)
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, r.URL.String()+" "+r.Header.Get("Authorization"))
		switch {
		case r.Header.Get("Authorization") != "Bearer acme.secret":
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"unauthorized: no valid credential","code":"unauthorized"}`)
		case r.URL.Query().Get("role") == "garbage":
			fmt.Fprint(w, `<html>a proxy's page</html>`)
		default:
			fmt.Fprint(w, peerSet)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	cred := filepath.Join(dir, "credential")
	if err := os.WriteFile(cred, []byte("acme.secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-registrar", srv.URL+"/", "-credential-file", cred, "-exclude", "10.42.0.0/16").Output()
	if err != nil {
		t.Fatalf("allowlist: %v", err)
	}
	if len(asked) != 1 || asked[0] != "/v1/peers?format=json&role=public Bearer acme.secret" {
		t.Errorf("asked %q", asked)
	}
	file := filepath.Join(dir, "allowlist.yaml")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	extra, err := chartutil.ReadValuesFile(file)
	if err != nil {
		t.Fatalf("the output is no values file: %v\n%s", err, out)
	}
	vals := loadValues(t, "testdata/member-bft-minimal.yaml")
	vals["networkPolicy"] = extra["networkPolicy"]
	files, err := render(memberChart, vals)
	if err != nil {
		t.Fatalf("render with the allow-list: %v\n%s", err, out)
	}
	r := decode(t, files)
	pp := find(t, r.policies, npName, "acme-public-p2p")
	var cidrs []string
	for _, f := range pp.Spec.Ingress[0].From {
		cidrs = append(cidrs, f.IPBlock.CIDR)
	}
	if want := []string{"198.51.100.20/32", "203.0.113.7/32", "2001:db8::5/128"}; !slices.Equal(cidrs, want) {
		t.Errorf("acme-public-p2p admits %v, want %v; values:\n%s", cidrs, want, out)
	}
	if ports := policyPorts(pp); !slices.Contains(ports, 30303) || !slices.Contains(ports, 26656) {
		t.Errorf("acme-public-p2p ports %v, want geth's and CometBFT's", ports)
	}

	// Bad answers and bad flags: a clear error, exit status 1, no values.
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong credential", []string{"-registrar", srv.URL, "-credential-file", os.DevNull}, "401 Unauthorized: {\"error\":\"unauthorized"},
		{"not a peer set", []string{"-registrar", srv.URL, "-credential-file", cred, "-role", "garbage"}, "not a peer set"},
		{"bad CIDR", []string{"-registrar", srv.URL, "-credential-file", cred, "-exclude", "10.42/16"}, `-exclude "10.42/16"`},
		{"no registrar", []string{"-credential-file", cred}, "-registrar and -credential-file are required"},
	} {
		cmd := exec.CommandContext(ctx, bin, tc.args...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err == nil || len(out) != 0 || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%s: err %v, stdout %q, stderr %q; want %q", tc.name, err, out, stderr.String(), tc.want)
		}
	}
}
