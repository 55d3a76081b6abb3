package registrarclient_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/consortium/consortium/internal/registrartest"
)

// A member rotates its credential with the file the client reads from as
// --out: the running client moves to the new credential by itself, before
// the old one's grace ends, with no request refused on the way.
func TestClientFollowsItsCredentialFile(t *testing.T) {
	r := registrartest.New(t, registrartest.Options{})
	cred := r.AddMember(t, "acme")
	file := filepath.Join(t.TempDir(), "acme.cred")
	if err := os.WriteFile(file, []byte(cred+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := registrarclient.New(registrarclient.Config{URL: r.URL, Credential: cred, CredentialFile: file})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := c.Nodes(ctx); err != nil {
		t.Fatal(err)
	}
	rot, err := c.RotateCredential(ctx, "acme", 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(rot.Credential+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Requests go on while the client notices the file (within a second)
	// and after the old credential's grace has ended.
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Nodes(ctx); err != nil {
			t.Fatalf("a request during the rotation: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The client that was given the credential alone keeps the old one,
	// now refused: the file is what moved the first one over.
	fixed, err := registrarclient.New(registrarclient.Config{URL: r.URL, Credential: cred})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fixed.Nodes(ctx); !registrarclient.IsStatus(err, 401) {
		t.Fatalf("the old credential after its grace: %v, want a 401", err)
	}
	// A file emptied by mistake leaves the last credential in use.
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond) // past the once-a-second check
	if _, err := c.Nodes(ctx); err != nil {
		t.Fatalf("after the credential file was emptied: %v", err)
	}
}
