package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// writePair writes a self-signed certificate for 127.0.0.1 with serial,
// and its key, over certFile and keyFile (each by a rename, as renewal
// tools do).
func writePair(t *testing.T, certFile, keyFile string, serial int64) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "registrar"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	replace(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	replace(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
}

func replace(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// servedSerial is the serial of the certificate a new TLS handshake with
// addr gets.
func servedSerial(addr string) (int64, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// The registrar takes a renewed certificate without a restart: new
// handshakes get it within seconds of the files changing, or at once on
// SIGHUP; a connection opened before keeps working; a broken pair is
// refused with a log line and the certificate in use stays.
func TestRegistrarReloadsTLSCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	writePair(t, certFile, keyFile, 1)
	addr := freePort(t)
	p := startProc(t, "registrar", "--listen", addr, "--data", filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	waitSerial := func(want int64, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			got, err := servedSerial(addr)
			if err == nil && got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("serial %d (%v) served, want %d within %v; registrar output:\n%s", got, err, want, within, p.stderr.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitSerial(1, 60*time.Second)

	// A connection made before the renewal.
	old, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	writePair(t, certFile, keyFile, 2)
	waitSerial(2, 10*time.Second)
	if _, err := old.Write([]byte("GET /readyz HTTP/1.1\r\nHost: registrar\r\n\r\n")); err != nil {
		t.Fatalf("the connection opened before the renewal: %v", err)
	}
	buf := make([]byte, 64)
	old.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := old.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		t.Fatalf("the connection opened before the renewal answered %q, %v", buf[:n], err)
	}

	// SIGHUP: looked at at once, and the registrar lives on (without
	// its handler, SIGHUP ends a process).
	writePair(t, certFile, keyFile, 3)
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitSerial(3, 10*time.Second)

	// A broken certificate: refused, serial 3 stays.
	replace(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"))
	time.Sleep(1500 * time.Millisecond)
	if err := syscall.Kill(p.cmd.Process.Pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(p.stderr.String(), "new TLS certificate refused") {
		if time.Now().After(deadline) {
			t.Fatalf("no refusal logged for a broken certificate; output:\n%s", p.stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitSerial(3, 5*time.Second)
}
