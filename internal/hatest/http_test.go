package hatest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/testutil"
)

// hc is the test's own client for checks (not the agents'): one replica per
// request, no failover, so that each replica is judged on its own answers.
var hc = &http.Client{
	Timeout: 15 * time.Second,
	Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 64,
	},
}

func do(method, url, cred string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func get(url, cred string) (int, []byte, error) { return do("GET", url, cred, nil) }

// nodes is GET /v1/nodes as the credential sees it on one replica.
func nodes(base, cred string) ([]registry.NodeView, error) {
	code, b, err := get(base+"/v1/nodes", cred)
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET %s/v1/nodes: HTTP %d: %s", base, code, b)
	}
	var out struct {
		Nodes []registry.NodeView `json:"nodes"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	return out.Nodes, nil
}

// register posts a registration to one replica and returns the status and
// the body.
func register(base, cred string, req httpapi.RegisterRequest) (int, []byte, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return 0, nil, err
	}
	return do("POST", base+"/v1/nodes", cred, b)
}

// node is a simulated node: its key, signed record and registration.
type node struct {
	key    *ecdsa.PrivateKey
	id     string
	pubHex string // the public key as enode URLs spell it
	member string
	req    httpapi.RegisterRequest
}

// newNode signs a record for a fresh key at 10.<a>.<b>.<c>:30303; a public
// node sends it as its public record too (one address).
func newNode(t testing.TB, member, role string, a, n int) *node {
	k := testutil.Key(t)
	ip := fmt.Sprintf("10.%d.%d.%d", a, n/250%250, n%250+1)
	enr := testutil.ENR(t, k, 1, ip, 30303, 30303)
	req := httpapi.RegisterRequest{ENR: enr, Role: role}
	if role == "public" {
		req.PublicENR = enr
	}
	return &node{key: k, id: testutil.ID(k), pubHex: hex.EncodeToString(crypto.FromECDSAPub(&k.PublicKey)[1:]),
		member: member, req: req}
}

// checkPresent fails the test unless every node of want (id -> member) is
// listed, with its member, by the administrator on each replica.
func checkPresent(t testing.TB, rs []*replica, admin string, want map[string]string) {
	t.Helper()
	for _, r := range rs {
		ns, err := nodes(r.url(), admin)
		if err != nil {
			t.Errorf("%s: %v", r.name, err)
			continue
		}
		have := make(map[string]string, len(ns))
		for _, n := range ns {
			have[n.ID] = n.Member
		}
		missing := 0
		for id, m := range want {
			if have[id] != m {
				if missing < 5 {
					t.Errorf("%s: acknowledged node %s of %s missing (listed as %q)", r.name, id[:12], m, have[id])
				}
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("%s: %d of %d acknowledged nodes missing", r.name, missing, len(want))
		} else {
			t.Logf("%s: all %d acknowledged nodes present (%d listed)", r.name, len(want), len(ns))
		}
	}
}
