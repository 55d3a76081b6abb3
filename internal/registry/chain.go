package registry

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/store"
)

// ChainMember is a member as a BFT chain's governance state lists it
// (internal/chainfollow reads it): its name and, when the add proposal that
// made it a member carried one, the hash of its registrar credential
// (auth.Hash, hex). Genesis members carry none: `consortium init`'s seed
// gave the registrar their hashes.
type ChainMember struct {
	Name     string
	CredHash string
}

// ChainSync is what one SyncChainMembers changed, by member name.
type ChainSync struct {
	Added      []string // on chain with a credential hash, new here
	Readmitted []string // on chain with a credential hash, revoked or with another hash here
	Revoked    []string // here and not on chain
	// Unknown are on chain without a credential hash and not here (or
	// revoked here): they cannot authenticate until an add proposal
	// carries their hash.
	Unknown []string
}

// Empty is true when nothing changed and nothing is unknown.
func (c ChainSync) Empty() bool {
	return len(c.Added)+len(c.Readmitted)+len(c.Revoked)+len(c.Unknown) == 0
}

// GovernByChain makes the chain the only source of membership: from now
// on the administrator's AddMember and RevokeMember are refused with
// ErrChainGoverned, and SyncChainMembers decides. The registrar calls it
// at start when it follows a BFT chain (--chain-rpc).
func (r *Registry) GovernByChain() { r.chainGoverned.Store(true) }

// ChainGoverned reports whether GovernByChain was called.
func (r *Registry) ChainGoverned() bool { return r.chainGoverned.Load() }

// planChainSync is the pure decision behind SyncChainMembers: the member
// records to write so that the registry's members equal the chain's.
//   - on chain with a hash: present, not revoked, with that hash (the
//     chain decided, by a vote of more than 2/3 of the power, to admit the
//     holder of that credential), unless the member has since rotated the
//     credential the chain admitted it with (ChainHash records which);
//   - on chain without a hash: left as it is; unknown when absent or
//     revoked here;
//   - here and not on chain: revoked (kept, so its name and nodes stay
//     bound to it and a later member of that name must be voted in anew).
func planChainSync(have map[string]store.Member, chain []ChainMember, now time.Time) ([]store.Member, ChainSync) {
	var puts []store.Member
	var out ChainSync
	on := make(map[string]bool, len(chain))
	for _, cm := range chain {
		on[cm.Name] = true
		m, ok := have[cm.Name]
		switch {
		case cm.CredHash == "" && (!ok || m.Revoked):
			out.Unknown = append(out.Unknown, cm.Name)
		case cm.CredHash == "":
		case !ok:
			puts = append(puts, store.Member{Name: cm.Name, Hash: cm.CredHash, ChainHash: cm.CredHash, Created: now})
			out.Added = append(out.Added, cm.Name)
		case m.Revoked || chainDecidedAnew(m, cm.CredHash):
			m.Hash, m.ChainHash, m.Revoked, m.RevokedAt = cm.CredHash, cm.CredHash, false, time.Time{}
			m.PrevHash, m.PrevUntil = "", time.Time{}
			puts = append(puts, m)
			out.Readmitted = append(out.Readmitted, cm.Name)
		case m.ChainHash == "":
			// Admitted with this hash by a version that did not record
			// it: record it, so a later rotation is told apart.
			m.ChainHash = cm.CredHash
			puts = append(puts, m)
		}
	}
	for name, m := range have {
		if !on[name] && !m.Revoked {
			m.Revoked, m.RevokedAt = true, now
			puts = append(puts, m)
			out.Revoked = append(out.Revoked, name)
		}
	}
	slices.SortFunc(puts, func(a, b store.Member) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	slices.Sort(out.Revoked)
	return puts, out
}

// chainDecidedAnew reports whether the chain admitted m with a credential
// hash other than the one it last admitted m with: a new vote, which
// replaces whatever credential m has. A hash that differs only because m
// rotated its credential (RotateCredential) is not one: ChainHash stays.
func chainDecidedAnew(m store.Member, chainHash string) bool {
	if m.ChainHash == "" {
		return m.Hash != chainHash
	}
	return m.ChainHash != chainHash
}

// SyncChainMembers makes the registry's members follow the chain's list
// (see planChainSync). A revoked member's nodes leave every peer set at
// once and its credential is refused as revoked, as after RevokeMember.
// The caller (the chain follower) must pass a list it trusts.
func (r *Registry) SyncChainMembers(ctx context.Context, chain []ChainMember) (ChainSync, error) {
	for _, cm := range chain {
		if err := auth.ValidName(cm.Name); err != nil {
			return ChainSync{}, fmt.Errorf("%w: chain member: %v", ErrInvalid, err)
		}
		if cm.CredHash != "" && len(cm.CredHash) != 64 {
			return ChainSync{}, fmt.Errorf("%w: chain member %s: credential hash must be a SHA-256 hex digest", ErrInvalid, cm.Name)
		}
	}
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	r.mu.RLock()
	have := make(map[string]store.Member, len(r.members))
	for name, m := range r.members {
		have[name] = m.Member
	}
	r.mu.RUnlock()
	puts, out := planChainSync(have, chain, r.cfg.Now().UTC())
	for _, m := range puts {
		if err := r.store.PutMember(ctx, m); err != nil {
			return out, err
		}
		r.expect(memberKey(m.Name), memberFP(m))
		r.mu.Lock()
		var prev *store.Member
		if cur, ok := r.members[m.Name]; ok {
			was := cur.Member
			prev, cur.Member = &was, m
		} else {
			r.members[m.Name] = &member{Member: m}
		}
		eff := stepMember(prev, m)
		r.settleMember(m.Name, eff)
		r.mu.Unlock()
		// A write that only records the chain's hash tells nothing.
		switch eff.event {
		case EventMemberRevoked:
			r.log.Info("member revoked: no longer a member on chain", "member", m.Name)
		case EventMemberAdded:
			r.log.Info("member admitted: a member on chain", "member", m.Name)
		}
	}
	return out, nil
}
