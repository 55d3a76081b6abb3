package dnstree

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/dnsdisc"
)

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	k1, created, err := LoadOrCreateKey(dir)
	if err != nil || !created {
		t.Fatalf("first call: created=%v err=%v", created, err)
	}
	fi, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKey(dir)
	if err != nil || created {
		t.Fatalf("second call: created=%v err=%v", created, err)
	}
	if !k1.Equal(k2) {
		t.Error("the key changed across loads: every client's enrtree URL would go stale")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, KeyFile+".tmp*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// A key others can read is refused, not used.
	os.Chmod(filepath.Join(dir, KeyFile), 0o644)
	if _, _, err := LoadOrCreateKey(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("mode 0644: err = %v, want a refusal", err)
	}
}

func TestURL(t *testing.T) {
	key, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	zone := Zone("acme", "Example.")
	if zone != "acme.nodes.example" {
		t.Fatalf("Zone = %q", zone)
	}
	u := URL(&key.PublicKey, zone)
	domain, pub, err := dnsdisc.ParseURL(u)
	if err != nil {
		t.Fatalf("ParseURL(%q): %v", u, err)
	}
	if domain != zone || !pub.Equal(&key.PublicKey) {
		t.Errorf("ParseURL(%q) = %s, %v", u, domain, pub)
	}
	// The URL Sign returns is the same string.
	tree, _ := dnsdisc.MakeTree(1, nil, nil)
	if signed, _ := tree.Sign(key, zone); signed != u {
		t.Errorf("URL = %s, Tree.Sign says %s", u, signed)
	}
}

func TestLoadKeySharedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "shared.key")
	if _, err := LoadKey(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v, want os.ErrNotExist", err)
	}
	key, _ := crypto.GenerateKey()
	if err := WriteKey(path, key); err != nil {
		t.Fatal(err)
	}
	// Two replicas loading the one file sign alike.
	a, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := LoadKey(path)
	if !a.Equal(key) || !b.Equal(key) {
		t.Fatal("LoadKey did not return the key WriteKey wrote")
	}
	os.WriteFile(path, []byte("not hex"), 0o600)
	if _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("garbage key file: err = %v, want one naming the file", err)
	}
}
