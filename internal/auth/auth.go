// Package auth makes and checks the registrar's bearer credentials.
//
// A credential is "<principal>.<secret>": the principal is a member name (or
// "admin"), the secret 32 random bytes in base64url. Only SHA-256 of the
// secret is ever stored: the secret has 256 bits of entropy, so a slow
// password hash would add cost without adding safety. Comparison is constant
// time so a wrong guess learns nothing from timing.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Admin is the principal name of the consortium administrator.
const Admin = "admin"

var (
	// ErrMalformed is returned for a credential that is not "<name>.<secret>".
	ErrMalformed = errors.New("malformed credential")
	// ErrBadName is returned for a member name outside the allowed alphabet.
	ErrBadName = errors.New("member name must be 1-32 characters of a-z, 0-9 and '-', starting with a letter")
)

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// ValidName reports whether name may be used as a member name. Upper case,
// separators (',', '.', newline, space) and the reserved "admin" and
// "default" (the seed's default network) are refused, so a
// name can be embedded in a credential, a URL path and a comma-separated list.
func ValidName(name string) error {
	if name == Admin || name == "default" || !nameRE.MatchString(name) {
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	return nil
}

// Credential is a parsed bearer token.
type Credential struct {
	Principal string
	Secret    string
}

// String renders the credential as it is handed to its owner.
func (c Credential) String() string { return c.Principal + "." + c.Secret }

// New makes a fresh credential for principal.
func New(principal string) (Credential, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Credential{}, err
	}
	return Credential{Principal: principal, Secret: base64.RawURLEncoding.EncodeToString(b[:])}, nil
}

// Parse splits a bearer token. It does not check the secret.
func Parse(token string) (Credential, error) {
	token = strings.TrimSpace(token)
	name, secret, ok := strings.Cut(token, ".")
	if !ok || name == "" || len(secret) != 43 || (name != Admin && ValidName(name) != nil) {
		return Credential{}, ErrMalformed
	}
	if _, err := base64.RawURLEncoding.DecodeString(secret); err != nil {
		return Credential{}, ErrMalformed
	}
	return Credential{Principal: name, Secret: secret}, nil
}

// Hash returns the stored form of a secret.
func Hash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Verify compares secret against a stored hash in constant time.
func Verify(storedHash, secret string) bool {
	got := Hash(secret)
	return subtle.ConstantTimeCompare([]byte(got), []byte(storedHash)) == 1
}
