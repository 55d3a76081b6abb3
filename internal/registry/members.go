package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/store"
)

// Principal is who a request is from.
type Principal struct {
	Name  string
	Admin bool
	// Previous: authenticated with the credential a rotation replaced,
	// still in its grace period (see RotateCredential).
	Previous bool
}

// EnsureAdmin creates the administrator credential when none exists yet and
// returns it; it returns ok=false (and no credential) when one exists. Over a
// shared store (store.Initializer) replicas starting together create one:
// the others return ok=false and hold the winner's state.
func (r *Registry) EnsureAdmin(ctx context.Context) (cred auth.Credential, ok bool, err error) {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	have := r.adminHash != ""
	r.mu.RUnlock()
	if have {
		return auth.Credential{}, false, nil
	}
	cred, err = auth.New(auth.Admin)
	if err != nil {
		return cred, false, err
	}
	hash := auth.Hash(cred.Secret)
	if in, shared := r.store.(store.Initializer); shared {
		done, err := in.InitIfEmpty(ctx, hash, nil)
		if err != nil {
			return auth.Credential{}, false, err
		}
		if !done {
			return auth.Credential{}, false, r.reload(ctx)
		}
	} else if err := r.store.SetAdminHash(ctx, hash); err != nil {
		return auth.Credential{}, false, err
	}
	r.expect(adminKey, hash)
	r.mu.Lock()
	r.adminHash = hash
	r.mu.Unlock()
	return cred, true, nil
}

// reload replaces memory with the store's state, for a replica that lost the
// race to initialise: the winner's administrator and members must be known
// before this call returns, not when the watch gets to them. Must be called
// with writeMu held.
func (r *Registry) reload(ctx context.Context) error {
	s, err := r.store.Load(ctx)
	if err != nil {
		return err
	}
	r.replaceState(s, r.cfg.Now())
	return nil
}

// Seed is a start-up state written by `consortium init`: hashes only.
type Seed struct {
	AdminHash string       `json:"admin_hash"`
	Members   []SeedMember `json:"members"`
}

// SeedMember is one member of a Seed.
type SeedMember struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
}

// ApplySeedFile is ApplySeed of the seed in the JSON file at path, the
// registrar seed `consortium init` writes.
func (r *Registry) ApplySeedFile(ctx context.Context, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading the registrar seed: %w", err)
	}
	var s Seed
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("registrar seed %s: %w", path, err)
	}
	return r.ApplySeed(ctx, s)
}

// ApplySeed installs a seed into an empty registry. It refuses a registry
// that already has an administrator, so a seed can never overwrite state.
func (r *Registry) ApplySeed(ctx context.Context, s Seed) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	empty := r.adminHash == "" && len(r.members) == 0
	r.mu.RUnlock()
	if !empty {
		return ErrAlreadyInitialised
	}
	if len(s.AdminHash) != 64 {
		return fmt.Errorf("%w: seed admin_hash must be a SHA-256 hex digest", ErrInvalid)
	}
	now := r.cfg.Now().UTC()
	for _, m := range s.Members {
		if err := auth.ValidName(m.Name); err != nil {
			return fmt.Errorf("%w: seed: %v", ErrInvalid, err)
		}
		if len(m.Hash) != 64 {
			return fmt.Errorf("%w: seed member %s: hash must be a SHA-256 hex digest", ErrInvalid, m.Name)
		}
	}
	members := make([]store.Member, 0, len(s.Members))
	for _, m := range s.Members {
		members = append(members, store.Member{Name: m.Name, Hash: m.Hash, Created: now})
	}
	if in, shared := r.store.(store.Initializer); shared {
		// One atomic step, so that replicas given the same seed at once
		// apply it once and one given none cannot half-initialise it.
		done, err := in.InitIfEmpty(ctx, s.AdminHash, members)
		if err != nil {
			return err
		}
		if !done {
			if err := r.reload(ctx); err != nil {
				return err
			}
			return ErrAlreadyInitialised
		}
		r.expect(adminKey, s.AdminHash)
		r.mu.Lock()
		for _, sm := range members {
			r.expect(memberKey(sm.Name), memberFP(sm))
			r.members[sm.Name] = &member{Member: sm}
		}
		r.adminHash = s.AdminHash
		r.bump()
		r.mu.Unlock()
		return nil
	}
	for _, sm := range members {
		if err := r.store.PutMember(ctx, sm); err != nil {
			return err
		}
		r.expect(memberKey(sm.Name), memberFP(sm))
		r.mu.Lock()
		r.members[sm.Name] = &member{Member: sm}
		r.mu.Unlock()
	}
	if err := r.store.SetAdminHash(ctx, s.AdminHash); err != nil {
		return err
	}
	r.expect(adminKey, s.AdminHash)
	r.mu.Lock()
	r.adminHash = s.AdminHash
	r.bump()
	r.mu.Unlock()
	return nil
}

// Authenticate checks a bearer token.
func (r *Registry) Authenticate(token string) (Principal, error) {
	c, err := auth.Parse(token)
	if err != nil {
		return Principal{}, ErrUnauthenticated
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c.Principal == auth.Admin {
		if r.adminHash != "" && auth.Verify(r.adminHash, c.Secret) {
			return Principal{Name: auth.Admin, Admin: true}, nil
		}
		return Principal{}, ErrUnauthenticated
	}
	m, ok := r.members[c.Principal]
	if !ok {
		// Spend the same work as a real check so timing does not tell
		// which member names exist.
		auth.Verify("0000000000000000000000000000000000000000000000000000000000000000", c.Secret)
		return Principal{}, ErrUnauthenticated
	}
	p := Principal{Name: m.Name}
	if !auth.Verify(m.Hash, c.Secret) {
		if !prevValid(m.Member, r.cfg.Now()) || !auth.Verify(m.PrevHash, c.Secret) {
			return Principal{}, ErrUnauthenticated
		}
		p.Previous = true
	}
	if m.Revoked {
		return Principal{}, ErrRevoked
	}
	return p, nil
}

// AddMember creates a member and returns its credential, which is shown
// once and never stored.
func (r *Registry) AddMember(ctx context.Context, p Principal, name string) (auth.Credential, error) {
	if !p.Admin {
		return auth.Credential{}, ErrForbidden
	}
	if r.ChainGoverned() {
		return auth.Credential{}, ErrChainGoverned
	}
	if err := auth.ValidName(name); err != nil {
		return auth.Credential{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	_, exists := r.members[name]
	r.mu.RUnlock()
	if exists {
		return auth.Credential{}, fmt.Errorf("%w: %s", ErrMemberExists, name)
	}
	cred, err := auth.New(name)
	if err != nil {
		return auth.Credential{}, err
	}
	m := store.Member{Name: name, Hash: auth.Hash(cred.Secret), Created: r.cfg.Now().UTC()}
	if err := r.store.PutMember(ctx, m); err != nil {
		return auth.Credential{}, err
	}
	r.expect(memberKey(name), memberFP(m))
	r.mu.Lock()
	r.members[name] = &member{Member: m}
	r.settleMember(name, stepMember(nil, m))
	r.mu.Unlock()
	r.log.Info("member added", "member", name)
	return cred, nil
}

// RevokeMember revokes a member's credential; its nodes leave every peer
// set at once. Revoking twice is not an error.
func (r *Registry) RevokeMember(ctx context.Context, p Principal, name string) (MemberView, error) {
	if !p.Admin {
		return MemberView{}, ErrForbidden
	}
	if r.ChainGoverned() {
		return MemberView{}, ErrChainGoverned
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	m, cp, err := r.memberRecord(name)
	if err != nil {
		return MemberView{}, err
	}
	if !cp.Revoked {
		cp.Revoked, cp.RevokedAt = true, r.cfg.Now().UTC()
		if err := r.putMember(ctx, m, cp); err != nil {
			return MemberView{}, err
		}
		r.log.Info("member revoked", "member", name)
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.memberView(m, r.cfg.Now()), nil
}

// memberRecord is member name and a copy of its record, to change and
// write with putMember. Must be called with writeMu held.
func (r *Registry) memberRecord(name string) (*member, store.Member, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.members[name]
	if !ok {
		return nil, store.Member{}, fmt.Errorf("%w: member %q", ErrNotFound, name)
	}
	return m, m.Member, nil
}

// putMember stores cp as m's record, then applies it in memory (the
// index moves and events are told as stepMember says). Must be called
// with writeMu held.
func (r *Registry) putMember(ctx context.Context, m *member, cp store.Member) error {
	if err := r.store.PutMember(ctx, cp); err != nil {
		return err
	}
	r.expect(memberKey(cp.Name), memberFP(cp))
	r.mu.Lock()
	defer r.mu.Unlock()
	prev := m.Member
	m.Member = cp
	r.settleMember(cp.Name, stepMember(&prev, cp))
	return nil
}

// Members lists every member (administrator only).
func (r *Registry) Members(p Principal) ([]MemberView, error) {
	if !p.Admin {
		return nil, ErrForbidden
	}
	now := r.cfg.Now()
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]MemberView, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, r.memberView(m, now))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (r *Registry) memberView(m *member, now time.Time) MemberView {
	v := MemberView{Name: m.Name, Created: m.Created, Revoked: m.Revoked}
	if m.Revoked {
		t := m.RevokedAt
		v.RevokedAt = &t
	}
	if prevValid(m.Member, now) && !m.Revoked {
		t := m.PrevUntil
		v.PreviousCredentialUntil = &t
	}
	for _, n := range r.nodes {
		if n.member == m.Name && !n.hidden {
			v.Nodes++
			if n.live(now) {
				v.LiveNodes++
			}
		}
	}
	return v
}

// revoked must be called with mu held.
func (r *Registry) revoked(name string) bool {
	m, ok := r.members[name]
	return !ok || m.Revoked
}
