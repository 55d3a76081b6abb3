package bootnode

import (
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/ethereum/go-ethereum/crypto"
)

// loadOrCreateKey returns the node key stored in path, creating it first when
// the file does not exist. The format is geth's nodekey (64 hex characters), so
// the same file works with `geth --nodekey`. An empty path gives a fresh key
// that lives as long as the process.
func loadOrCreateKey(path string, log *slog.Logger) (*ecdsa.PrivateKey, error) {
	if path == "" {
		key, err := crypto.GenerateKey()
		if err != nil {
			return nil, fmt.Errorf("%w: generate: %v", ErrKeyFile, err)
		}
		log.Warn("no node key file configured: the enode changes on every restart")
		return key, nil
	}
	key, err := loadKey(path, log)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createKey(path); err != nil {
		return nil, err
	}
	log.Info("created node key", "file", path)
	// Read back what is on disk: a concurrent start may have won the race.
	return loadKey(path, log)
}

func loadKey(path string, log *slog.Logger) (*ecdsa.PrivateKey, error) {
	info, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	if info.IsDir() {
		return nil, fmt.Errorf("%w: %s is a directory", ErrKeyFile, path)
	}
	// Warn rather than refuse: Kubernetes mounts secrets 0644 by default, and
	// refusing would turn a deployment detail into an outage.
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		log.Warn("node key file is readable by others", "file", path, "mode", fmt.Sprintf("%#o", perm))
	}
	key, err := crypto.LoadECDSA(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrKeyFile, path, err)
	}
	return key, nil
}

// createKey writes a new key to path without ever exposing a partial file: the
// key goes to a 0600 temporary file that is then hard-linked into place.
// Unlike a rename, the link fails if path appeared meanwhile, so two processes
// starting together end up with the same key.
func createKey(path string) error {
	key, err := crypto.GenerateKey()
	if err != nil {
		return fmt.Errorf("%w: generate: %v", ErrKeyFile, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	tmp, err := os.CreateTemp(dir, ".nodekey-*") // mode 0600
	if err != nil {
		return fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.WriteString(hex.EncodeToString(crypto.FromECDSA(key)))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp.Name(), path)
	}
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	return nil
}
