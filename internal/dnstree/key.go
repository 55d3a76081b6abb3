package dnstree

import (
	"crypto/ecdsa"
	"encoding/base32"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/consortium/consortium/internal/atomicfile"
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
	key, err = LoadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if key, err = crypto.GenerateKey(); err != nil {
		return nil, false, err
	}
	if err := WriteKey(path, key); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// LoadKey reads a tree key file (hex, as WriteKey writes it). Replicas of
// one registrar must sign with one key, or a client's pinned URL matches
// only some of them: they all load the same file (a shared secret) rather
// than each creating its own. A file others may read is refused; a missing
// one is an error that wraps os.ErrNotExist.
func LoadKey(path string) (*ecdsa.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("tree key %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("tree key %s is readable by others (mode %v): chmod 600 it", path, fi.Mode().Perm())
	}
	key, err := crypto.LoadECDSA(path)
	if err != nil {
		return nil, fmt.Errorf("tree key %s: %w", path, err)
	}
	return key, nil
}

// WriteKey writes key to path in hex, mode 0600, atomically
// (internal/atomicfile), so a crash never leaves half a key; it creates the
// directory (0700) if needed.
func WriteKey(path string, key *ecdsa.PrivateKey) error {
	return atomicfile.Write(path, fmt.Appendf(nil, "%x", crypto.FromECDSA(key)), 0o600)
}

// b32 is EIP-1459's base32: standard alphabet, no padding.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// URL is the enrtree:// URL of the tree at zone signed by pub: the value of
// geth's --discovery.dns, for the CLI and the dashboard to print.
func URL(pub *ecdsa.PublicKey, zone string) string {
	return "enrtree://" + b32.EncodeToString(crypto.CompressPubkey(pub)) + "@" + strings.TrimSuffix(zone, ".")
}

// CheckDomain reports whether d can be the consortium's tree domain
// (Config.Domain): host-name labels, short enough for every name served.
func CheckDomain(d string) error {
	d = strings.Trim(strings.ToLower(d), ".")
	if d == "" || !validDomain(d) {
		return fmt.Errorf("%w: %q is not a domain name of letters, digits and hyphens", ErrConfig, d)
	}
	return nil
}

// Zone is member's zone under the consortium domain: <member>.nodes.<domain>.
func Zone(member, domain string) string {
	return member + ".nodes." + strings.Trim(strings.ToLower(domain), ".")
}
