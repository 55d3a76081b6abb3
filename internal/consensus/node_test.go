package consensus

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"
)

// testHome writes a CometBFT home with one validator (or a full node's,
// without the validator key) and returns it.
func testHome(t *testing.T, validator bool) string {
	t.Helper()
	home := t.TempDir()
	for _, d := range []string{"config", "data"} {
		if err := os.MkdirAll(filepath.Join(home, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	pv, err := privval.GenFilePV(filepath.Join(home, "config", "priv_validator_key.json"), filepath.Join(home, "data", "priv_validator_state.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if validator {
		pv.Key.Save()
	}
	if _, err := p2p.LoadOrGenNodeKey(filepath.Join(home, "config", "node_key.json")); err != nil {
		t.Fatal(err)
	}
	doc := &cmttypes.GenesisDoc{ChainID: "test", GenesisTime: time.Now(), InitialHeight: 1,
		ConsensusParams: cmttypes.DefaultConsensusParams(),
		Validators:      []cmttypes.GenesisValidator{{Address: pv.GetAddress(), PubKey: pv.Key.PubKey, Power: 10}}}
	if err := doc.ValidateAndComplete(); err != nil {
		t.Fatal(err)
	}
	if err := doc.SaveAs(filepath.Join(home, "config", "genesis.json")); err != nil {
		t.Fatal(err)
	}
	return home
}

func TestNewRefusesBadConfig(t *testing.T) {
	home := testHome(t, true)
	secret := make([]byte, 32)
	ok := Config{Home: home, EngineURL: "http://127.0.0.1:1", JWTSecret: secret}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no home", func(c *Config) { c.Home = "" }},
		{"home without genesis", func(c *Config) { c.Home = t.TempDir() }},
		{"no engine URL", func(c *Config) { c.EngineURL = "" }},
		{"engine URL not http", func(c *Config) { c.EngineURL = "ws://127.0.0.1:8551" }},
		{"short JWT secret", func(c *Config) { c.JWTSecret = secret[:16] }},
		{"bad initial peer", func(c *Config) { c.Peers = []string{"nobody@nowhere"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			if _, err := New(cfg); !errors.Is(err, ErrConfig) && !errors.Is(err, ErrBadPeer) {
				t.Fatalf("New = %v, want ErrConfig or ErrBadPeer", err)
			}
		})
	}
	// A corrupt validator key is an error, never CometBFT's os.Exit.
	bad := testHome(t, true)
	if err := os.WriteFile(filepath.Join(bad, "config", "priv_validator_key.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := ok
	cfg.Home = bad
	if _, err := New(cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("New with a corrupt validator key = %v, want ErrConfig", err)
	}
}

func TestNodeLifecycleWithoutGeth(t *testing.T) {
	for _, validator := range []bool{true, false} {
		home := testHome(t, validator)
		n, err := New(Config{Home: home, EngineURL: "http://127.0.0.1:1", JWTSecret: make([]byte, 32)})
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(n.ID()) {
			t.Fatalf("ID %q is not 40 hex characters", n.ID())
		}
		if validator {
			if _, err := os.Stat(filepath.Join(home, "data", "priv_validator_state.json")); err != nil {
				t.Fatalf("validator state not created: %v", err)
			}
		}
		if err := n.SetPeers([]string{"1111111111111111111111111111111111111111@127.0.0.1:26656"}); err != nil {
			t.Fatal(err)
		}
		// Start waits for geth; Stop ends the wait.
		done := make(chan error, 1)
		go func() { done <- n.Start(context.Background()) }()
		time.Sleep(200 * time.Millisecond)
		if s := n.Status(); s.Height != 0 || s.IsValidator != validator {
			t.Fatalf("status while waiting for geth: %+v (validator %v)", s, validator)
		}
		if err := n.Stop(); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err == nil {
				t.Fatal("Start succeeded without geth")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Stop did not end Start's wait for geth")
		}
		if err := n.Start(context.Background()); err == nil {
			t.Fatal("a stopped Node started again")
		}
		if err := n.Stop(); err != nil {
			t.Fatalf("second Stop: %v", err)
		}
	}
}

func TestLoadJWTSecret(t *testing.T) {
	dir := t.TempDir()
	hex32 := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		name, content string
		ok            bool
	}{
		{"geth's own format", hex32, true},
		{"0x and a newline", "0x" + hex32 + "\n", true},
		{"too short", hex32[:62], false},
		{"not hex", "zz" + hex32[2:], false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.name)
		if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		secret, err := LoadJWTSecret(path)
		if tt.ok && (err != nil || len(secret) != 32) {
			t.Errorf("%s: %x, %v; want 32 bytes", tt.name, secret, err)
		}
		if !tt.ok && !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", tt.name, err)
		}
	}
	if _, err := LoadJWTSecret(filepath.Join(dir, "missing")); !errors.Is(err, ErrConfig) {
		t.Errorf("missing file: %v, want ErrConfig", err)
	}
}
