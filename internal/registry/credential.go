package registry

import (
	"context"
	"fmt"
	"time"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/store"
)

// A member rotates its credential without downtime: the new one is valid at
// once, the one it replaces until the grace period ends, so the member's
// agents and tools can be moved over one by one. Only two are ever valid: a
// rotation during another's grace period ends the older one. A grace of zero
// refuses the old credential at once (one that leaked).
const (
	// DefaultCredentialGrace is the grace period when none is asked for.
	DefaultCredentialGrace = 24 * time.Hour
	// MaxCredentialGrace bounds it: a credential replaced because it may
	// have leaked must not stay valid for long.
	MaxCredentialGrace = 7 * 24 * time.Hour
)

// Rotation is what RotateCredential did.
type Rotation struct {
	Credential auth.Credential // the new credential: shown once, never stored
	// PreviousValidUntil is when the replaced credential stops being
	// accepted; the zero time when it already is not.
	PreviousValidUntil time.Time
}

// RotateCredential replaces member name's credential. The member itself may
// rotate it, with its current credential (not with the one a rotation
// replaced: whoever holds only that cannot lock the member out). The
// administrator may rotate any member's, except in a consortium whose
// members the chain decides: there the registrar's administrator must not
// be able to take a member's identity (ErrChainGoverned).
func (r *Registry) RotateCredential(ctx context.Context, p Principal, name string, grace time.Duration) (Rotation, error) {
	switch {
	case grace < 0 || grace > MaxCredentialGrace:
		return Rotation{}, fmt.Errorf("%w: grace must be between 0 and %s, not %s", ErrInvalid, MaxCredentialGrace, grace)
	case p.Admin && r.ChainGoverned():
		return Rotation{}, ErrChainGoverned
	case !p.Admin && p.Name != name:
		return Rotation{}, fmt.Errorf("%w: a member rotates only its own credential", ErrForbidden)
	case !p.Admin && p.Previous:
		return Rotation{}, fmt.Errorf("%w: rotate with the current credential, not the one a rotation replaced", ErrForbidden)
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	m, cp, err := r.memberRecord(name)
	if err != nil {
		return Rotation{}, err
	}
	if cp.Revoked {
		return Rotation{}, fmt.Errorf("%w: member %q", ErrRevoked, name)
	}
	cred, err := auth.New(name)
	if err != nil {
		return Rotation{}, err
	}
	now := r.cfg.Now().UTC()
	cp.PrevHash, cp.PrevUntil = "", time.Time{}
	if grace > 0 {
		cp.PrevHash, cp.PrevUntil = cp.Hash, now.Add(grace)
	}
	cp.Hash = auth.Hash(cred.Secret)
	if err := r.putMember(ctx, m, cp); err != nil {
		return Rotation{}, err
	}
	if grace > 0 {
		r.log.Info("member credential rotated", "member", name, "by", p.Name, "previous_valid_until", cp.PrevUntil)
	} else {
		r.log.Info("member credential rotated; the previous one is refused from now on", "member", name, "by", p.Name)
	}
	return Rotation{Credential: cred, PreviousValidUntil: cp.PrevUntil}, nil
}

// prevValid reports whether m's replaced credential is still accepted at now.
func prevValid(m store.Member, now time.Time) bool {
	return m.PrevHash != "" && now.Before(m.PrevUntil)
}
