package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/testutil"
)

// TestMain lets the test binary act as the consortium binary, so tests can
// run the real program as a child process (and kill -9 it).
func TestMain(m *testing.M) {
	if os.Getenv("CONSORTIUM_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// proc is a child consortium process in its own process group.
type proc struct {
	cmd    *exec.Cmd
	stderr *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "CONSORTIUM_RUN_MAIN=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &proc{cmd: cmd, stderr: &syncBuf{}}
	cmd.Stderr = p.stderr
	cmd.Stdout = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			t.Logf("process %v output:\n%s", args, p.stderr.String())
		}
	})
	return p
}

func (p *proc) kill9() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	p.cmd.Wait()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(t *testing.T, url string, hc *http.Client) {
	t.Helper()
	if hc == nil {
		hc = http.DefaultClient
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := hc.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("registrar at %s not ready", url)
}

func readCred(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, AdminCredentialFile))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func TestStartupWritesAdminCredentialAndLogsOnlyItsPath(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	p := startProc(t, "registrar", "--listen", addr, "--data", dir)
	waitReady(t, "http://"+addr, nil)
	cred := readCred(t, dir)
	fi, _ := os.Stat(filepath.Join(dir, AdminCredentialFile))
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file mode %v", fi.Mode().Perm())
	}
	out := p.stderr.String()
	if !strings.Contains(out, filepath.Join(dir, AdminCredentialFile)) {
		t.Fatalf("log does not name the credential file:\n%s", out)
	}
	if strings.Contains(out, strings.SplitN(cred, ".", 2)[1]) {
		t.Fatal("log shows the secret")
	}
	if strings.Contains(out, "INSECURE") {
		t.Fatal("legacy warning without the flag")
	}
}

func TestLegacyOpenPostWarnsAtStartup(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	p := startProc(t, "registrar", "--listen", addr, "--data", dir, "--legacy-open-post")
	waitReady(t, "http://"+addr, nil)
	// The process wrote the warning before it served; our copy of its
	// stderr pipe may lag behind the answer, so give it a moment.
	deadline := time.Now().Add(5 * time.Second)
	for !(strings.Contains(p.stderr.String(), "level=WARN") && strings.Contains(p.stderr.String(), "INSECURE")) {
		if time.Now().After(deadline) {
			t.Fatalf("no warning:\n%s", p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill -9 under write load, then restart: every member, credential and
// acknowledged record is still there.
func TestKill9KeepsEveryAcknowledgedWrite(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	url := "http://" + addr
	p := startProc(t, "registrar", "--listen", addr, "--data", dir, "--ttl", "10m", "--rate-limit", "100000")
	waitReady(t, url, nil)
	admin := readCred(t, dir)
	ac, _ := registrarclient.New(registrarclient.Config{URL: url, Credential: admin})
	ctx := context.Background()
	creds := map[string]string{}
	for _, m := range []string{"m1", "m2", "m3"} {
		mc, err := ac.AddMember(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		creds[m] = mc.Credential
	}
	var mu sync.Mutex
	acked := map[string]string{} // id -> member
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			m := []string{"m1", "m2", "m3"}[w%3]
			c, _ := registrarclient.New(registrarclient.Config{URL: url, Credential: creds[m]})
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := testutil.Key(t)
				_, err := c.Register(ctx, httpapi.RegisterRequest{Role: "tx", ENR: testutil.ENR(t, k, 1, fmt.Sprintf("10.%d.%d.%d", w, i/250%250, i%250+1), 30303, 30303)})
				if err == nil {
					mu.Lock()
					acked[testutil.ID(k)] = m
					mu.Unlock()
				}
			}
		}(w)
	}
	// Let the load run, then kill -9 in the middle of it.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill9()
	close(stop)
	wg.Wait()
	if len(acked) < 50 {
		t.Fatalf("only %d registrations acknowledged before the kill", len(acked))
	}

	startProc(t, "registrar", "--listen", addr, "--data", dir, "--ttl", "10m")
	waitReady(t, url, nil)
	if got := readCred(t, dir); got != admin {
		t.Fatal("admin credential changed across restart")
	}
	nodes, err := ac.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]string{}
	for _, n := range nodes {
		have[n.ID] = n.Member
	}
	for id, m := range acked {
		if have[id] != m {
			t.Errorf("acknowledged node %s of %s lost (have %q)", id, m, have[id])
		}
	}
	for m, cred := range creds {
		c, _ := registrarclient.New(registrarclient.Config{URL: url, Credential: cred})
		if _, err := c.Nodes(ctx); err != nil {
			t.Errorf("member %s credential lost: %v", m, err)
		}
	}
	t.Logf("%d acknowledged registrations, all present after kill -9 and restart", len(acked))
}

func selfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "registrar"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	cert, key = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cert, key
}

func TestTLSAndMemberCLI(t *testing.T) {
	dir := t.TempDir()
	cert, key := selfSigned(t, t.TempDir())
	addr := freePort(t)
	startProc(t, "registrar", "--listen", addr, "--data", dir, "--tls-cert", cert, "--tls-key", key)
	url := "https://" + addr
	c, err := registrarclient.New(registrarclient.Config{URL: url, CAFile: cert})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for c.Ready(context.Background()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("TLS registrar not ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Plain http to the TLS port is refused.
	if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
		if resp.StatusCode == 200 {
			t.Fatal("plain http answered 200 on the TLS port")
		}
		resp.Body.Close()
	}
	credFile := filepath.Join(dir, AdminCredentialFile)
	cli := func(args ...string) (string, string, error) {
		var out, errb bytes.Buffer
		e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		err := run(context.Background(), e, args)
		return out.String(), errb.String(), err
	}
	out, _, err := cli("member", "add", "--registrar", url, "--ca", cert, "--credential-file", credFile, "acme")
	if err != nil {
		t.Fatal(err)
	}
	acme := strings.TrimSpace(out)
	if !strings.HasPrefix(acme, "acme.") || strings.Count(out, "\n") != 1 {
		t.Fatalf("member add printed %q", out)
	}
	out, _, err = cli("member", "list", "--registrar", url, "--ca", cert, "--credential-file", credFile)
	if err != nil || !strings.Contains(out, "acme") || !strings.Contains(out, "active") {
		t.Fatalf("member list: %q %v", out, err)
	}
	if strings.Contains(out, strings.SplitN(acme, ".", 2)[1]) {
		t.Fatal("member list shows a credential")
	}
	if _, _, err = cli("member", "add", "--registrar", url, "--ca", cert, "--credential-file", credFile, "acme"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("duplicate add: %v", err)
	}
	if _, _, err = cli("member", "add", "--registrar", url, "--ca", cert, "--credential-file", credFile, "Bad,Name"); err == nil {
		t.Fatal("bad name accepted")
	}
	out, _, err = cli("member", "revoke", "--registrar", url, "--ca", cert, "--credential-file", credFile, "acme")
	if err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %q %v", out, err)
	}
	out, _, _ = cli("member", "list", "--registrar", url, "--ca", cert, "--credential-file", credFile)
	if !strings.Contains(out, "revoked") {
		t.Fatalf("list after revoke: %q", out)
	}
	// A member credential is refused over plain http to a non-loopback host.
	if _, err := registrarclient.New(registrarclient.Config{URL: "http://registrar.example:9898", Credential: acme}); err == nil {
		t.Fatal("credential allowed over plain http to a remote host")
	}
	// Wrong credential file: a clear error.
	if _, _, err = cli("member", "list", "--registrar", url, "--ca", cert, "--credential-file", filepath.Join(dir, "nope")); err == nil || !strings.Contains(err.Error(), "credential") {
		t.Fatalf("missing credential file: %v", err)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"registrar", "--ttl", "x"}, {"registrar", "extra"}, {"member"}, {"registrar", "--tls-cert", "a"}} {
		var out, errb bytes.Buffer
		e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		if err := run(context.Background(), e, args); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	// The agent's sealing flags: a bad address, a copy with no destination.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"agent", "run", "--role", "validator", "--rpc", "x.ipc", "--seal", "0x12"}, "--seal \"0x12\" is not an address"},
		{[]string{"agent", "init", "--role", "validator", "--signer-keystore", t.TempDir()}, "--signer-keystore needs --keystore"},
	} {
		var out, errb bytes.Buffer
		e := &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
		if err := run(context.Background(), e, c.args); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
	// A taken port: one clear line.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	var errb bytes.Buffer
	e := &env{stdout: &errb, stderr: &errb, getenv: func(string) string { return "" }}
	err := run(context.Background(), e, []string{"registrar", "--listen", l.Addr().String(), "--data", t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("taken port: %v", err)
	}
	_ = bufio.NewReader
}

func TestHealthcheck(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	startProc(t, "registrar", "--listen", addr, "--data", dir)
	waitReady(t, "http://"+addr, nil)
	e := &env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }}
	if err := run(context.Background(), e, []string{"healthcheck", "http://" + addr + "/healthz"}); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), e, []string{"healthcheck", "http://" + addr + "/nope"}); err == nil {
		t.Fatal("404 counted as healthy")
	}
	if err := run(context.Background(), e, []string{"healthcheck", "http://" + freePort(t) + "/healthz"}); err == nil {
		t.Fatal("closed port counted as healthy")
	}
}
