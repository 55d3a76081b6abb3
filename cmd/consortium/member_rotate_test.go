package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// member rotate-credential --out replaces the member's credential file in
// place (mode 0600): the new credential works, the old one until --grace
// ends; without --out the credential is printed; the administrator
// rotates another member's; misuse is a usage error.
func TestMemberRotateCredential(t *testing.T) {
	dir := t.TempDir()
	url := startInProcessRegistrar(t, dir, 30*time.Second)
	adminFile := filepath.Join(dir, AdminCredentialFile)
	out, _, err := cliRun(nil, "member", "add", "acme", "--registrar", url, "--credential-file", adminFile)
	if err != nil {
		t.Fatal(err)
	}
	old := strings.TrimSpace(out)
	file := filepath.Join(dir, "acme.credential")
	if err := os.WriteFile(file, []byte(old+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	whoami := func(cred string) error {
		_, _, err := cliRun(map[string]string{"CONSORTIUM_CREDENTIAL": cred}, "node", "list", "--registrar", url)
		return err
	}

	out, _, err = cliRun(nil, "member", "rotate-credential", "--grace", "2s", "--registrar", url, "--credential-file", file, "--out", file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "written to "+file) || !strings.Contains(out, "accepted until") {
		t.Fatalf("output %q", out)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file mode %v", fi.Mode().Perm())
	}
	cur := strings.TrimSpace(string(b))
	if cur == old || !strings.HasPrefix(cur, "acme.") {
		t.Fatalf("credential file after the rotation: %q", cur)
	}
	if err := whoami(cur); err != nil {
		t.Fatalf("the new credential: %v", err)
	}
	if err := whoami(old); err != nil {
		t.Fatalf("the old credential in its grace: %v", err)
	}
	out, _, err = cliRun(nil, "member", "list", "--registrar", url, "--credential-file", adminFile)
	if err != nil || !strings.Contains(out, "acme  rotating") {
		t.Fatalf("member list during the grace: %q, %v", out, err)
	}
	time.Sleep(2100 * time.Millisecond)
	if err := whoami(old); err == nil {
		t.Fatal("the old credential after its grace was accepted")
	}

	// The administrator, for acme, no grace: printed on stdout.
	out, _, err = cliRun(nil, "member", "rotate-credential", "acme", "--grace", "0s", "--registrar", url, "--credential-file", adminFile)
	if err != nil {
		t.Fatal(err)
	}
	byAdmin := strings.TrimSpace(out)
	if err := whoami(byAdmin); err != nil {
		t.Fatalf("the administrator's new credential for acme: %v", err)
	}
	if err := whoami(cur); err == nil {
		t.Fatal("a credential replaced with --grace 0s was accepted")
	}

	for _, bad := range [][]string{
		{"member", "rotate-credential", "--registrar", url, "--credential-file", adminFile}, // the admin must name the member
		{"member", "rotate-credential", "a", "b", "--registrar", url, "--credential-file", adminFile},
	} {
		if _, _, err := cliRun(nil, bad...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", bad, err)
		}
	}
	if _, _, err := cliRun(nil, "member", "rotate-credential", "acme", "--grace", "200h", "--registrar", url, "--credential-file", adminFile); err == nil || !strings.Contains(err.Error(), "grace") {
		t.Errorf("--grace 200h: %v", err)
	}
}
