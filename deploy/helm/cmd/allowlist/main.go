// Command allowlist writes the consortium-member chart's
// networkPolicy.consortiumCIDRs from the registrar's allow-list: the peer
// set a public node of the caller's member gets (GET /v1/peers?role=public,
// docs/api.md), which holds the member's own nodes and every other
// member's public node at its public endpoint. Each address becomes a /32
// (or /128); addresses inside -exclude (the member's own pod or node
// CIDRs, which the chart admits by pod selector anyway) are left out.
//
//	cd deploy/helm && go run ./cmd/allowlist -registrar https://registrar.example.org:9898 \
//	    -credential-file acme.credential -ca ca.pem -exclude 10.0.0.0/8 >allowlist.yaml
//	helm upgrade acme ./consortium-member -f values.yaml -f allowlist.yaml
//
// Run it again (and helm upgrade) when a member joins, leaves or moves a
// public node: a NetworkPolicy is static, unlike the agent's nftables
// table, which follows the set by itself (docs/operations.md).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "allowlist:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("allowlist", flag.ContinueOnError)
	registrar := fs.String("registrar", "", "the registrar's base URL (required)")
	credFile := fs.String("credential-file", "", "a file holding the member's credential (required)")
	caFile := fs.String("ca", "", "PEM CA to check the registrar's certificate with (default: the system's)")
	role := fs.String("role", "public", "the role whose peer set is the allow-list")
	exclude := fs.String("exclude", "", "comma-separated CIDRs to leave out (the member's own networks)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *registrar == "" || *credFile == "" {
		return errors.New("-registrar and -credential-file are required")
	}
	var skip []netip.Prefix
	for _, s := range strings.Split(*exclude, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("-exclude %q: %v", s, err)
		}
		skip = append(skip, p.Masked())
	}
	cred, err := os.ReadFile(*credFile)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 20 * time.Second}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("-ca %s: no PEM certificate in it", *caFile)
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	}
	u := strings.TrimRight(*registrar, "/") + "/v1/peers?format=json&role=" + url.QueryEscape(*role)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(cred)))
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return err
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %.300s", u, res.Status, body)
	}
	cidrs, err := allowList(body, skip)
	if err != nil {
		return fmt.Errorf("GET %s: %v", u, err)
	}
	fmt.Fprintf(out, "# The consortium's allow-list for a %s node, from %s (allowlist, deploy/helm).\n", *role, *registrar)
	fmt.Fprintf(out, "networkPolicy:\n  consortiumCIDRs:")
	if len(cidrs) == 0 {
		fmt.Fprintf(out, " []\n")
		return nil
	}
	fmt.Fprintln(out)
	for _, c := range cidrs {
		fmt.Fprintf(out, "    - %q\n", c)
	}
	return nil
}

// allowList reads a peer set's JSON and returns its nodes' addresses as
// host prefixes, sorted, without duplicates or those inside skip.
func allowList(body []byte, skip []netip.Prefix) ([]string, error) {
	var set struct {
		Static *[]string `json:"static"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("not a peer set: %v", err)
	}
	if set.Static == nil {
		return nil, errors.New("not a peer set: no \"static\" list")
	}
	var out []netip.Prefix
	for _, e := range *set.Static {
		u, err := url.Parse(e)
		if err != nil || u.Scheme != "enode" {
			return nil, fmt.Errorf("not an enode URL: %q", e)
		}
		a, err := netip.ParseAddr(u.Hostname())
		if err != nil {
			return nil, fmt.Errorf("enode URL %q: %v", e, err)
		}
		a = a.Unmap()
		if slices.ContainsFunc(skip, func(p netip.Prefix) bool { return p.Contains(a) }) {
			continue
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	out = slices.Compact(out)
	s := make([]string, len(out))
	for i, p := range out {
		s[i] = p.String()
	}
	return s, nil
}
