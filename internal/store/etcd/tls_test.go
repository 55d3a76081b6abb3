package etcd

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/etcdserver"
	"github.com/consortium/consortium/internal/store"
)

// certs writes a CA, a server certificate for 127.0.0.1 and a client
// certificate into dir and returns their paths.
func certs(t *testing.T, dir string) (ca, serverCert, serverKey, clientCert, clientKey string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	issue := func(name string, serial int64, usage x509.ExtKeyUsage) (string, string) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "PRIVATE KEY", keyDER)
	}
	ca = write("ca.pem", "CERTIFICATE", caDER)
	serverCert, serverKey = issue("server", 2, x509.ExtKeyUsageServerAuth)
	clientCert, clientKey = issue("client", 3, x509.ExtKeyUsageClientAuth)
	return
}

// The store reaches a member that serves TLS and requires client
// certificates with etcdctl's three files, and not without a certificate.
func TestTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, sc, sk, cc, ck := certs(t, dir)
	ports := make([]int, 2)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	clientURL := fmt.Sprintf("https://127.0.0.1:%d", ports[0])
	srv, err := etcdserver.Start(context.Background(), etcdserver.Config{
		DataDir:        filepath.Join(dir, "data"),
		ClientURLs:     []string{clientURL},
		PeerURLs:       []string{fmt.Sprintf("http://127.0.0.1:%d", ports[1])},
		ClientCertFile: sc, ClientKeyFile: sk, ClientCAFile: ca,
		Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	ctx := context.Background()
	s, err := Open(ctx, Config{Endpoints: srv.ClientEndpoints(), CAFile: ca, CertFile: cc, KeyFile: ck, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	must(t, s.SetAdminHash(ctx, "h"))
	if st, err := s.Load(ctx); err != nil || st.AdminHash != "h" {
		t.Fatalf("load %+v %v", st, err)
	}

	_, err = Open(ctx, Config{Endpoints: srv.ClientEndpoints(), CAFile: ca, DialTimeout: time.Second, Logger: quiet()})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("without a client certificate: %v", err)
	}
	t.Log(err)
}
