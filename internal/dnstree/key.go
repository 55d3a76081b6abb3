package dnstree

import (
	"crypto/ecdsa"
	"encoding/base32"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/crypto"
)

// KeyFile is the tree key's file name in the registrar's data directory.
const KeyFile = "dnstree.key"

// LoadOrCreateKey returns the registrar's tree key from dataDir, creating
// it (hex, mode 0600, written atomically) on first use. The key is what
// clients pin in their enrtree:// URL: it must survive restarts, or every
// client's flag goes stale. created reports a new key.
func LoadOrCreateKey(dataDir string) (key *ecdsa.PrivateKey, created bool, err error) {
	path := filepath.Join(dataDir, KeyFile)
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		return nil, false, fmt.Errorf("tree key %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	key, err = crypto.LoadECDSA(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("tree key %s: %v", path, err)
	}
	if key, err = crypto.GenerateKey(); err != nil {
		return nil, false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, false, err
	}
	tmp, err := os.CreateTemp(dataDir, KeyFile+".tmp*")
	if err != nil {
		return nil, false, err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if _, err := fmt.Fprintf(tmp, "%x", crypto.FromECDSA(key)); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, false, err
	}
	if err := tmp.Close(); err != nil {
		return nil, false, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// b32 is EIP-1459's base32: standard alphabet, no padding.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// URL is the enrtree:// URL of the tree at zone signed by pub: the value of
// geth's --discovery.dns, for the CLI and the dashboard to print.
func URL(pub *ecdsa.PublicKey, zone string) string {
	return "enrtree://" + b32.EncodeToString(crypto.CompressPubkey(pub)) + "@" + strings.TrimSuffix(zone, ".")
}

// Zone is member's zone under the consortium domain: <member>.nodes.<domain>.
func Zone(member, domain string) string {
	return member + ".nodes." + strings.Trim(strings.ToLower(domain), ".")
}
