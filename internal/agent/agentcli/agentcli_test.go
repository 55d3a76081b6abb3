package agentcli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/cliflags"
	"github.com/ethereum/go-ethereum/common"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v3"
)

func TestFirewall(t *testing.T) {
	for _, tc := range []struct {
		kind, table, allow string
		on                 bool
		allowed            int
		usage              bool
	}{
		{"", "consortium_agent", "", false, 0, false},
		{"nftables", "consortium_agent", "", true, 0, false},
		{"nft", "consortium_agent", "", true, 0, false},
		{"nftables", "consortium_agent", "10.0.0.0/8, 192.0.2.7,2001:db8::1", true, 3, false},
		{"", "consortium_agent", "10.0.0.0/8", false, 0, true},
		{"iptables", "consortium_agent", "", false, 0, true},
		{"nftables", "bad name", "", false, 0, true},
		{"nftables", "consortium_agent", "10.0.0.0/33", false, 0, true},
	} {
		fc, err := Firewall(tc.kind, tc.table, tc.allow)
		if tc.usage {
			if !errors.Is(err, cliflags.ErrUsage) {
				t.Errorf("%q %q %q: err %v, want a usage error", tc.kind, tc.table, tc.allow, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q %q %q: %v", tc.kind, tc.table, tc.allow, err)
			continue
		}
		if (fc.Firewall != nil) != tc.on || len(fc.Allow) != tc.allowed {
			t.Errorf("%q %q %q: firewall %v, %d allowed; want %v, %d", tc.kind, tc.table, tc.allow, fc.Firewall != nil, len(fc.Allow), tc.on, tc.allowed)
		}
	}
}

// check parses args as `agent run`'s flags and checks them, with env as
// the environment.
func check(t *testing.T, env map[string]string, args ...string) (*Run, error) {
	t.Helper()
	getenv := func(k string) string { return env[k] }
	var rf *RunFlags
	cmd := &cli.Command{Name: "t", Flags: Flags(getenv), Writer: io.Discard, ErrWriter: io.Discard,
		Action: func(_ context.Context, c *cli.Command) error { rf = ReadFlags(c); return nil }}
	if err := cmd.Run(context.Background(), append([]string{"t"}, args...)); err != nil || rf == nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return rf.Check(io.Discard, getenv)
}

func TestCheckUsage(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"CONSORTIUM_CREDENTIAL": "cred"}
	key := filepath.Join(dir, "nodekey")
	ks := filepath.Join(dir, "keystore")
	ok := []string{"--role", "tx", "--rpc", "geth.ipc", "--nodekey", key, "--keystore", ks}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no role", []string{"--rpc", "geth.ipc"}, "--role and --rpc are required"},
		{"no rpc", []string{"--role", "tx"}, "--role and --rpc are required"},
		{"seal", append(ok, "--seal", "0x12"), `--seal "0x12" is not an address`},
		{"firewall", append(ok, "--firewall", "iptables"), `--firewall "iptables"`},
		{"log format", append(ok, "--log-format", "xml"), "--log-format must be text or json"},
		{"log level", append(ok, "--log-level", "loud"), "--log-level"},
		{"advertise", append(ok, "--advertise-ip", "10.0.0"), `--advertise-ip "10.0.0" is not an IP`},
		{"public", append(ok, "--public-ip", "x"), `--public-ip "x" is not an IP`},
	} {
		_, err := check(t, env, tc.args...)
		if !errors.Is(err, cliflags.ErrUsage) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want a usage error with %q", tc.name, err, tc.want)
		}
	}
	// A usage error leaves no node key and no relay account behind.
	for _, p := range []string{key, ks} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a usage error created %s: %v", p, err)
		}
	}
	// No credential: not a usage error, and it says where to put one.
	_, err := check(t, nil, append(ok, "--credential-file", filepath.Join(dir, "none"))...)
	if err == nil || errors.Is(err, cliflags.ErrUsage) || !strings.Contains(err.Error(), "CONSORTIUM_CREDENTIAL") {
		t.Errorf("no credential: %v", err)
	}
}

func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "nodekey")
	signer := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	r, err := check(t, map[string]string{"CONSORTIUM_CREDENTIAL": "cred", "CONSORTIUM_REGISTRAR": "http://127.0.0.1:1"},
		"--role", "public", "--rpc", "geth.ipc", "--nodekey", key, "--state-dir", dir, "--config-out", "c.toml",
		"--p2p-listen", "127.0.0.1:30303", "--advertise-ip", "10.0.0.5", "--public-ip", "192.0.2.9", "--public-port", "30399",
		"--seal", signer.Hex(), "--listen", "", "--firewall", "nftables", "--firewall-allow", "10.1.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	c := r.Config
	if c.Role != "public" || c.StateDir != dir || c.ConfigPath != "c.toml" || c.ListenAddr != "127.0.0.1:30303" ||
		c.AdvertiseIP.String() != "10.0.0.5" || c.PublicIP.String() != "192.0.2.9" || c.PublicPort != 30399 ||
		c.Seal != signer || c.Firewall == nil || c.FirewallTable != agent.DefaultNFTTable || len(c.FirewallAllow) != 1 {
		t.Errorf("config %+v", c)
	}
	if r.RPC != "geth.ipc" || r.Listen != "" || r.Log == nil || c.Registrar == nil || c.Key == nil {
		t.Errorf("run %+v", r)
	}
	// The node key was created, and is read back the next time.
	again, err := check(t, map[string]string{"CONSORTIUM_CREDENTIAL": "cred"}, "--role", "tx", "--rpc", "x", "--nodekey", key)
	if err != nil || !again.Config.Key.Equal(c.Key) {
		t.Errorf("second check: %v; same key %v", err, err == nil && again.Config.Key.Equal(c.Key))
	}
}

type health bool

func (h health) Health() agent.Health { return agent.Health{Role: "tx", ClientReachable: bool(h)} }

func TestHandler(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "agentcli_test_total"}))
	for _, up := range []bool{true, false} {
		srv := httptest.NewServer(handler(health(up), reg))
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		var h agent.Health
		err = json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		want := http.StatusOK
		if !up {
			want = http.StatusServiceUnavailable
		}
		if err != nil || resp.StatusCode != want || h.Role != "tx" || h.ClientReachable != up {
			t.Errorf("up %v: /healthz %d %+v %v; want %d", up, resp.StatusCode, h, err, want)
		}
		resp, err = http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "agentcli_test_total 0") {
			t.Errorf("/metrics %d:\n%s", resp.StatusCode, body)
		}
		if resp, err := http.Post(srv.URL+"/healthz", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST /healthz: %v %v", resp, err)
		}
		srv.Close()
	}
}

// Serve returns nil, without dialling forever, when ctx ends while the
// client is not there yet.
func TestServeEndsWhileWaitingForTheClient(t *testing.T) {
	dir := t.TempDir()
	r, err := check(t, map[string]string{"CONSORTIUM_CREDENTIAL": "cred"}, "--role", "tx", "--rpc", filepath.Join(dir, "none.ipc"), "--nodekey", filepath.Join(dir, "k"), "--listen", "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 600*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := Serve(ctx, r, nil); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d < 500*time.Millisecond || d > 5*time.Second {
		t.Errorf("Serve returned after %v, want when ctx ended (600 ms)", d)
	}
}
