package registry

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/testutil"
)

// The seed file `consortium init` writes is what the registrar and the
// devnet start from: a missing or broken file is a clear error that
// changes nothing, a good one is applied once.
func TestApplySeedFile(t *testing.T) {
	ctx := context.Background()
	c := &cluster{t: t, s: newSharedStore(), clock: testutil.NewClock()}
	r := c.open(c.s.replica())
	dir := t.TempDir()

	missing := filepath.Join(dir, "none.json")
	if err := r.ApplySeedFile(ctx, missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing seed file: %v, want fs.ErrNotExist", err)
	}
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte(`{"admin_hash":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.ApplySeedFile(ctx, broken); err == nil || !strings.Contains(err.Error(), broken) {
		t.Fatalf("broken seed file: %v, want an error naming %s", err, broken)
	}
	if _, err := r.Authenticate("x"); err == nil {
		t.Fatal("a refused seed left a credential behind")
	}

	ac, _ := auth.New(auth.Admin)
	mc, _ := auth.New("acme")
	good := filepath.Join(dir, "seed.json")
	body := `{"admin_hash":"` + auth.Hash(ac.Secret) + `","members":[{"name":"acme","hash":"` + auth.Hash(mc.Secret) + `"}]}`
	if err := os.WriteFile(good, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.ApplySeedFile(ctx, good); err != nil {
		t.Fatal(err)
	}
	if p, err := r.Authenticate(mc.String()); err != nil || p.Name != "acme" {
		t.Fatalf("the seed's member: %+v, %v", p, err)
	}
	if p, err := r.Authenticate(ac.String()); err != nil || !p.Admin {
		t.Fatalf("the seed's administrator: %+v, %v", p, err)
	}
	if err := r.ApplySeedFile(ctx, good); !errors.Is(err, ErrAlreadyInitialised) {
		t.Fatalf("second seed: %v, want ErrAlreadyInitialised", err)
	}
}
