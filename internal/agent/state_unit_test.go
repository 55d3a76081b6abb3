package agent

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/consortium/consortium/internal/api"
)

// The cold-start file holds the peer set as geth reads it: static peers
// trusted too, the bootnodes for discv4 and discv5, the listen address.
func TestWriteGethConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "geth", "config.toml")
	static := []string{"enode://aa@10.0.0.1:30303", "enode://bb@10.0.0.2:30303"}
	boot := []string{"enode://cc@10.0.0.3:30301"}
	if err := WriteGethConfig(path, api.PeerConfig("10.0.0.9:30303", static, boot)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), gethConfigHeader) {
		t.Errorf("no header:\n%s", b)
	}
	var cfg struct {
		Node struct {
			P2P struct {
				StaticNodes, TrustedNodes, BootstrapNodes, BootstrapNodesV5 []string
				ListenAddr                                                  string
			}
		}
	}
	if _, err := toml.Decode(string(b), &cfg); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	p := cfg.Node.P2P
	if !slices.Equal(p.StaticNodes, static) || !slices.Equal(p.TrustedNodes, static) ||
		!slices.Equal(p.BootstrapNodes, boot) || !slices.Equal(p.BootstrapNodesV5, boot) || p.ListenAddr != "10.0.0.9:30303" {
		t.Errorf("config.toml read back as %+v:\n%s", p, b)
	}
	if fi, err := os.Stat(path); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
}
