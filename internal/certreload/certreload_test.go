package certreload_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/certreload"
)

// A private CA issuing certificates for 127.0.0.1, each with its own
// serial number, as a consortium's CA would for the registrar.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &ca{cert: cert, key: key, pool: pool}
}

// issue returns the PEM of a certificate for 127.0.0.1 with serial, and of
// its key.
func (c *ca) issue(t *testing.T, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "registrar"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// clock is a settable clock for Config.Now.
type clock struct{ ns atomic.Int64 }

func newClock() *clock               { c := &clock{}; c.ns.Store(time.Now().UnixNano()); return c }
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

// logBuf collects the log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }
func (l *logBuf) count(s string) int          { return strings.Count(l.String(), s) }

type fixture struct {
	t                 *testing.T
	ca                *ca
	certFile, keyFile string
	clock             *clock
	log               *logBuf
	r                 *certreload.Reloader
	url               string
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	// As a renewal tool does: a new file renamed over the old one.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// serve starts an HTTPS server on a real loopback listener whose
// certificate comes from a Reloader over files holding serial 1.
func serve(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, ca: newCA(t), certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key"),
		clock: newClock(), log: &logBuf{}}
	c, k := f.ca.issue(t, 1)
	write(t, f.certFile, c)
	write(t, f.keyFile, k)
	r, err := certreload.New(certreload.Config{CertFile: f.certFile, KeyFile: f.keyFile, Now: f.clock.now,
		Logger: slog.New(slog.NewTextHandler(f.log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	f.r = r
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		TLSConfig: r.TLSConfig()}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })
	f.url = "https://" + ln.Addr().String() + "/"
	return f
}

// client is a keep-alive HTTPS client that trusts the test CA.
func (f *fixture) client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: f.ca.pool}, MaxIdleConnsPerHost: 1}}
}

// serial makes a request with c and returns the serial number of the
// certificate its connection was set up with.
func (f *fixture) serial(c *http.Client) int64 {
	f.t.Helper()
	res, err := c.Get(f.url)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	if b, _ := io.ReadAll(res.Body); res.StatusCode != 200 || string(b) != "ok" {
		f.t.Fatalf("answer %d %q", res.StatusCode, b)
	}
	return res.TLS.PeerCertificates[0].SerialNumber.Int64()
}

// handshake is the serial number a new connection sees.
func (f *fixture) handshake() int64 {
	f.t.Helper()
	c := f.client()
	defer c.CloseIdleConnections()
	return f.serial(c)
}

// Rotating the files: new handshakes get the new certificate once the
// interval has passed, connections opened before keep working.
func TestRotation(t *testing.T) {
	f := serve(t)
	old := f.client()
	if s := f.serial(old); s != 1 {
		t.Fatalf("serving serial %d, want 1", s)
	}
	c, k := f.ca.issue(t, 2)
	write(t, f.certFile, c)
	write(t, f.keyFile, k)
	if s := f.handshake(); s != 1 {
		t.Fatalf("files looked at again within the interval: serial %d", s)
	}
	f.clock.add(certreload.DefaultInterval)
	if s := f.handshake(); s != 2 {
		t.Fatalf("after the rotation a new connection got serial %d, want 2", s)
	}
	if s := f.handshake(); s != 2 {
		t.Fatalf("second new connection: serial %d", s)
	}
	// The connection opened before the rotation: still served.
	for range 3 {
		if s := f.serial(old); s != 1 {
			t.Fatalf("the old connection now reports serial %d (a new connection was opened?)", s)
		}
	}
	if n := f.log.count("TLS certificate reloaded"); n != 1 {
		t.Fatalf("%d reload log lines, want 1:\n%s", n, f.log)
	}
}

// A broken new pair keeps the old certificate, is logged once, and a
// later good pair is taken.
func TestBrokenPairKeepsOld(t *testing.T) {
	other, _ := newCA(t).issue(t, 9)
	c2, k2 := newCA(t).issue(t, 2)
	_, k3 := newCA(t).issue(t, 3)
	for _, tc := range []struct {
		name      string
		cert, key []byte
	}{
		{"certificate not PEM", []byte("not a certificate"), k2},
		{"key not PEM", c2, []byte("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")},
		{"key of another certificate", c2, k3},
		{"certificate of another key", other, k2},
		{"certificate cut in half", c2[:len(c2)/2], k2},
		{"empty files", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := serve(t)
			write(t, f.certFile, tc.cert)
			write(t, f.keyFile, tc.key)
			for range 3 {
				f.clock.add(certreload.DefaultInterval)
				if s := f.handshake(); s != 1 {
					t.Fatalf("serial %d after a broken pair, want the old 1", s)
				}
			}
			if n := f.log.count("new TLS certificate refused"); n != 1 {
				t.Fatalf("%d refusals logged, want 1 (not one per look):\n%s", n, f.log)
			}
			if err := f.r.Reload(); err == nil || errors.Is(err, certreload.ErrNoChange) {
				t.Fatalf("Reload of a broken pair: %v", err)
			}
			if s := f.r.Certificate().Leaf.SerialNumber.Int64(); s != 1 {
				t.Fatalf("Reload replaced the certificate with serial %d", s)
			}
			c, k := f.ca.issue(t, 4)
			write(t, f.certFile, c)
			write(t, f.keyFile, k)
			f.clock.add(certreload.DefaultInterval)
			if s := f.handshake(); s != 4 {
				t.Fatalf("a good pair after a broken one: serial %d, want 4", s)
			}
		})
	}
}

// A rotation seen half done (the certificate written, the key not yet) is
// refused, and completed when the key arrives.
func TestRotationSeenHalfDone(t *testing.T) {
	f := serve(t)
	c, k := f.ca.issue(t, 2)
	write(t, f.certFile, c)
	f.clock.add(certreload.DefaultInterval)
	if s := f.handshake(); s != 1 {
		t.Fatalf("serial %d with the new certificate and the old key", s)
	}
	write(t, f.keyFile, k)
	f.clock.add(certreload.DefaultInterval)
	if s := f.handshake(); s != 2 {
		t.Fatalf("serial %d once the key was written, want 2", s)
	}
}

// Files removed: the old certificate is kept, with an error in the log.
func TestFilesGone(t *testing.T) {
	f := serve(t)
	os.Remove(f.keyFile)
	f.clock.add(certreload.DefaultInterval)
	if s := f.handshake(); s != 1 {
		t.Fatalf("serial %d", s)
	}
	if !strings.Contains(f.log.String(), "TLS certificate files unreadable") {
		t.Fatalf("no error logged:\n%s", f.log)
	}
}

// Reload (on SIGHUP) takes a new pair at once, whatever the interval, and
// says when nothing changed.
func TestReloadNow(t *testing.T) {
	f := serve(t)
	if err := f.r.Reload(); !errors.Is(err, certreload.ErrNoChange) {
		t.Fatalf("Reload of unchanged files: %v", err)
	}
	c, k := f.ca.issue(t, 2)
	write(t, f.certFile, c)
	write(t, f.keyFile, k)
	if err := f.r.Reload(); err != nil {
		t.Fatal(err)
	}
	if s := f.handshake(); s != 2 {
		t.Fatalf("serial %d after Reload, want 2", s)
	}
}

// New refuses what the server could not serve.
func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	c, k := newCA(t).issue(t, 1)
	_, k2 := newCA(t).issue(t, 2)
	write(t, filepath.Join(dir, "c"), c)
	write(t, filepath.Join(dir, "k"), k)
	write(t, filepath.Join(dir, "k2"), k2)
	for _, tc := range []struct{ name, cert, key string }{
		{"no files named", "", ""},
		{"missing certificate", filepath.Join(dir, "none"), filepath.Join(dir, "k")},
		{"missing key", filepath.Join(dir, "c"), filepath.Join(dir, "none")},
		{"key of another certificate", filepath.Join(dir, "c"), filepath.Join(dir, "k2")},
	} {
		if _, err := certreload.New(certreload.Config{CertFile: tc.cert, KeyFile: tc.key}); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	if _, err := certreload.New(certreload.Config{CertFile: filepath.Join(dir, "c"), KeyFile: filepath.Join(dir, "k")}); err != nil {
		t.Fatal(err)
	}
}

// Many handshakes at once while the files change: every one completes,
// with the old or the new certificate (run with -race).
func TestConcurrentHandshakes(t *testing.T) {
	f := serve(t)
	var wg sync.WaitGroup
	var bad atomic.Int64
	stop := make(chan struct{})
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				conn, err := tls.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(f.url, "https://"), "/"), &tls.Config{RootCAs: f.ca.pool})
				if err != nil {
					bad.Add(1)
					continue
				}
				if s := conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64(); s < 1 || s > 5 {
					bad.Add(1)
				}
				conn.Close()
			}
		}()
	}
	for i := int64(2); i <= 5; i++ {
		c, k := f.ca.issue(t, i)
		write(t, f.certFile, c)
		write(t, f.keyFile, k)
		f.clock.add(certreload.DefaultInterval)
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d handshakes failed", bad.Load())
	}
	if s := f.handshake(); s != 5 {
		t.Fatalf("serial %d at the end, want 5", s)
	}
}
