// Package certreload serves a TLS certificate from a pair of PEM files and
// picks up a new pair when the files change, so that a server renews its
// certificate (an ACME client, cert-manager, an operator copying files)
// without a restart and without dropping a connection.
//
// The files are looked at on a handshake, at most once per Interval: no
// goroutine, no file watcher (a Kubernetes secret volume swaps a symlink,
// which watchers on the files themselves miss), and nothing to stop. A new
// pair that does not load (a file half written, a key that does not match
// the certificate) is logged once and the previous certificate kept; the
// next change of either file is tried again.
package certreload

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often, at most, a handshake looks at the files.
const DefaultInterval = time.Second

// Config says where the pair is. Zero values mean the defaults given per
// field.
type Config struct {
	CertFile, KeyFile string // PEM: certificate chain, private key
	// Interval is the least time between two looks at the files.
	// Default DefaultInterval.
	Interval time.Duration
	// Now is the clock. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger // default slog.Default()
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Reloader holds the current certificate. Its methods are safe for
// concurrent use.
type Reloader struct {
	cfg Config

	cur       atomic.Pointer[tls.Certificate]
	nextCheck atomic.Int64 // unix ns before which handshakes do not look

	mu sync.Mutex // one look at the files at a time
	// The file contents last loaded, and last refused: an unchanged pair
	// is not parsed again, a refused one not logged again.
	loadedCert, loadedKey   []byte
	refusedCert, refusedKey []byte
	refused                 bool // refusedCert and refusedKey hold a pair
}

// ErrNoChange is returned by Reload when the files hold the pair already
// served.
var ErrNoChange = errors.New("certificate files unchanged")

// New loads the pair; an error means it could not be (the server should
// not start).
func New(cfg Config) (*Reloader, error) {
	cfg = cfg.withDefaults()
	if cfg.CertFile == "" || cfg.KeyFile == "" {
		return nil, errors.New("certreload: a certificate file and a key file are needed")
	}
	r := &Reloader{cfg: cfg}
	certPEM, keyPEM, err := r.read()
	if err != nil {
		return nil, err
	}
	c, err := parse(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	r.loadedCert, r.loadedKey = certPEM, keyPEM
	r.cur.Store(c)
	r.nextCheck.Store(cfg.Now().Add(cfg.Interval).UnixNano())
	return r, nil
}

// GetCertificate is for tls.Config.GetCertificate: it returns the current
// certificate, after looking at the files if Interval has passed since the
// last look. Handshakes that arrive while another one looks are not held
// up: they get the current certificate.
func (r *Reloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	now := r.cfg.Now().UnixNano()
	if next := r.nextCheck.Load(); now >= next && r.mu.TryLock() {
		// Checked again under the lock: another handshake may have just
		// looked.
		if r.nextCheck.Load() == next {
			r.reloadLocked()
			r.nextCheck.Store(r.cfg.Now().Add(r.cfg.Interval).UnixNano())
		}
		r.mu.Unlock()
	}
	return r.cur.Load(), nil
}

// Reload looks at the files now (on SIGHUP, say). It returns nil when a
// new certificate is served, ErrNoChange when the files hold the current
// one, and the reason otherwise (the previous certificate is kept).
func (r *Reloader) Reload() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refused = false // asked for: try and say why again
	return r.reloadLocked()
}

// Certificate is the certificate served now.
func (r *Reloader) Certificate() *tls.Certificate { return r.cur.Load() }

// TLSConfig is a server configuration (TLS 1.2 or newer) that serves the
// current certificate.
func (r *Reloader) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.GetCertificate}
}

// reloadLocked loads the files if they changed. Must be called with mu held.
func (r *Reloader) reloadLocked() error {
	log := r.cfg.Logger
	certPEM, keyPEM, err := r.read()
	if err != nil {
		log.Error("TLS certificate files unreadable; serving the previous certificate", "err", err)
		return err
	}
	if bytes.Equal(certPEM, r.loadedCert) && bytes.Equal(keyPEM, r.loadedKey) {
		return ErrNoChange
	}
	if r.refused && bytes.Equal(certPEM, r.refusedCert) && bytes.Equal(keyPEM, r.refusedKey) {
		return errRefusedAgain
	}
	c, err := parse(certPEM, keyPEM)
	if err != nil {
		// Often a rotation half done (the certificate written, the key
		// not yet): the next change is tried again.
		r.refusedCert, r.refusedKey, r.refused = certPEM, keyPEM, true
		log.Error("new TLS certificate refused; serving the previous certificate", "cert", r.cfg.CertFile, "key", r.cfg.KeyFile, "err", err)
		return err
	}
	r.loadedCert, r.loadedKey = certPEM, keyPEM
	r.refusedCert, r.refusedKey, r.refused = nil, nil, false
	r.cur.Store(c)
	log.Info("TLS certificate reloaded", "cert", r.cfg.CertFile, "subject", c.Leaf.Subject.String(),
		"serial", c.Leaf.SerialNumber.String(), "not_after", c.Leaf.NotAfter.UTC())
	if now := r.cfg.Now(); now.After(c.Leaf.NotAfter) {
		log.Warn("the TLS certificate now served has expired", "not_after", c.Leaf.NotAfter.UTC())
	}
	return nil
}

var errRefusedAgain = errors.New("certificate files unchanged since they were refused")

func (r *Reloader) read() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = os.ReadFile(r.cfg.CertFile); err != nil {
		return nil, nil, fmt.Errorf("TLS certificate: %w", err)
	}
	if keyPEM, err = os.ReadFile(r.cfg.KeyFile); err != nil {
		return nil, nil, fmt.Errorf("TLS key: %w", err)
	}
	return certPEM, keyPEM, nil
}

// parse builds the certificate, with its leaf parsed: tls.X509KeyPair
// checks that the key is the certificate's.
func parse(certPEM, keyPEM []byte) (*tls.Certificate, error) {
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("TLS certificate and key: %w", err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("TLS certificate: %w", err)
		}
	}
	return &c, nil
}
