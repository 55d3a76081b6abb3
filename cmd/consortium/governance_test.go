package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cometbft/cometbft/crypto/ed25519"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/governance"
)

// Bad command lines get a usage error before anything is dialled or
// signed; the registrar's subcommands still reach runMember.
func TestMemberGovernanceUsage(t *testing.T) {
	for _, args := range [][]string{
		{"member", "propose"},
		{"member", "propose", "add"},
		{"member", "propose", "add", "e", "extra"},
		{"member", "vote"},
		{"member", "vote", "a", "b"},
		{"member", "proposals", "x"},
		{"member", "propose", "add", "e", "--consensus-rpc", "nonsense"},
	} {
		var out, errb bytes.Buffer
		err := run(context.Background(), &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}, args)
		if !errors.Is(err, errUsage) {
			t.Errorf("%v: err %v; want a usage error", args, err)
		}
	}
	var out, errb bytes.Buffer
	err := run(context.Background(), &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}, []string{"member", "frobnicate"})
	if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "unknown command") {
		t.Errorf("member frobnicate: %v; want an unknown-command usage error", err)
	}
}

func TestParsePubKey(t *testing.T) {
	k := ed25519.GenPrivKey().PubKey().(ed25519.PubKey)
	for _, s := range []string{base64.StdEncoding.EncodeToString(k), hex.EncodeToString(k), "0x" + hex.EncodeToString(k)} {
		got, err := parsePubKey(s)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("parsePubKey(%q) = %x, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "abc", base64.StdEncoding.EncodeToString(k[:31]), hex.EncodeToString(append(k, 0))} {
		if _, err := parsePubKey(s); !errors.Is(err, errUsage) {
			t.Errorf("parsePubKey(%q) = %v; want a usage error", s, err)
		}
	}
}

func TestGovernanceActionFlags(t *testing.T) {
	k := ed25519.GenPrivKey().PubKey().(ed25519.PubKey)
	s, err := governance.NewState("c", []governance.Member{{Name: "a", PubKey: ed25519.GenPrivKey().PubKey().(ed25519.PubKey), Power: 7}}, governance.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f := governanceFlags{pubkey: base64.StdEncoding.EncodeToString(k), credFile: "", credHash: ""}
	a, err := f.action(s, "add", "e")
	if err != nil || a.Kind != governance.ActionAdd || a.Power != 7 || !bytes.Equal(a.PubKey, k) {
		t.Fatalf("add with the default power: %+v, %v; want power 7 (the members')", a, err)
	}
	if _, err := f.action(s, "remove", "a"); !errors.Is(err, errUsage) {
		t.Errorf("remove with --pubkey: %v; want a usage error", err)
	}
	if _, err := f.action(s, "promote", "a"); !errors.Is(err, errUsage) {
		t.Errorf("unknown action: %v; want a usage error", err)
	}
	f.pubkey = ""
	if a, err := f.action(s, "remove", "a"); err != nil || a.Kind != governance.ActionRemove {
		t.Errorf("remove: %+v, %v", a, err)
	}
}

// An add proposal carries the new member's credential hash, read from the
// credential file `member new-credential` wrote (whose principal must be
// the member proposed) or given as hex; never the secret.
func TestGovernanceCredentialFlags(t *testing.T) {
	k := ed25519.GenPrivKey().PubKey().(ed25519.PubKey)
	s, err := governance.NewState("c", []governance.Member{{Name: "a", PubKey: ed25519.GenPrivKey().PubKey().(ed25519.PubKey), Power: 7}}, governance.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "e.credential")
	var out bytes.Buffer
	e := &env{stdout: &out, stderr: &out, getenv: func(string) string { return "" }}
	if err := run(context.Background(), e, []string{"member", "new-credential", "e", "--out", file}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := auth.Parse(string(b))
	if err != nil || cred.Principal != "e" {
		t.Fatalf("new-credential wrote %q: %v", b, err)
	}
	hash := auth.Hash(cred.Secret)
	if !strings.Contains(out.String(), hash) || strings.Contains(out.String(), cred.Secret) {
		t.Fatalf("new-credential printed:\n%s\nwant the hash and never the secret", out.String())
	}
	if err := run(context.Background(), e, []string{"member", "new-credential", "e", "--out", file}); err == nil {
		t.Fatal("new-credential overwrote an existing file")
	}

	f := governanceFlags{pubkey: base64.StdEncoding.EncodeToString(k), credFile: file, credHash: ""}
	a, err := f.action(s, "add", "e")
	if err != nil || hex.EncodeToString(a.CredHash) != hash {
		t.Fatalf("add --credential-file: %x, %v; want %s", a.CredHash, err, hash)
	}
	if _, err := f.action(s, "add", "f"); !errors.Is(err, errUsage) {
		t.Errorf("e's credential for member f: %v; want a usage error", err)
	}
	f.credFile, f.credHash = "", hash
	if a, err := f.action(s, "add", "e"); err != nil || hex.EncodeToString(a.CredHash) != hash {
		t.Fatalf("add --credential-hash: %x, %v", a.CredHash, err)
	}
	f.credHash = "abc"
	if _, err := f.action(s, "add", "e"); !errors.Is(err, errUsage) {
		t.Errorf("short --credential-hash: %v; want a usage error", err)
	}
	f.credHash, f.pubkey = hash, ""
	if _, err := f.action(s, "remove", "a"); !errors.Is(err, errUsage) {
		t.Errorf("remove with a credential: %v; want a usage error", err)
	}
}
