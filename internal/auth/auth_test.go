package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"acme", true}, {"a", true}, {"lots-of-hotels", true}, {"m1", true},
		{"", false}, {"Acme", false}, {"a,b", false}, {"a\nb", false}, {"a.b", false},
		{"admin", false}, {"1abc", false}, {strings.Repeat("a", 33), false}, {"a b", false},
	} {
		err := ValidName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("ValidName(%q) error %v is not ErrBadName", tc.name, err)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	c, err := New("acme")
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(c.String())
	if err != nil {
		t.Fatal(err)
	}
	if p != c {
		t.Fatalf("parsed %+v, want %+v", p, c)
	}
	h := Hash(c.Secret)
	if strings.Contains(h, c.Secret) {
		t.Fatal("hash contains the secret")
	}
	if !Verify(h, c.Secret) {
		t.Fatal("Verify rejected the right secret")
	}
	other, _ := New("acme")
	if Verify(h, other.Secret) {
		t.Fatal("Verify accepted a wrong secret")
	}
}

func TestParseRejects(t *testing.T) {
	good, _ := New("acme")
	for _, tok := range []string{"", "acme", "acme.", ".x", "acme.short", "Acme." + good.Secret,
		"acme." + good.Secret + "x", "a,b." + good.Secret, "acme." + strings.Repeat("!", 43)} {
		if _, err := Parse(tok); !errors.Is(err, ErrMalformed) {
			t.Errorf("Parse(%q) = %v, want ErrMalformed", tok, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	c, _ := New("acme")
	f.Add(c.String())
	f.Add("admin.x")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err != nil {
			return
		}
		if p.Principal != Admin && ValidName(p.Principal) != nil {
			t.Fatalf("parsed a bad principal %q", p.Principal)
		}
		if len(p.Secret) != 43 {
			t.Fatalf("secret length %d", len(p.Secret))
		}
	})
}
