package registry

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/store"
)

func TestPlanChainSync(t *testing.T) {
	now := time.Unix(5000, 0).UTC()
	h1, h2 := strings.Repeat("1", 64), strings.Repeat("2", 64)
	have := map[string]store.Member{
		"a": {Name: "a", Hash: h1},
		"b": {Name: "b", Hash: h1},
		"c": {Name: "c", Hash: h1, Revoked: true, RevokedAt: now.Add(-time.Hour)},
		"d": {Name: "d", Hash: h1},
	}
	for _, tc := range []struct {
		name  string
		chain []ChainMember
		puts  []string // names written, with their revoked flag
		want  ChainSync
	}{
		{"same set, genesis members carry no hash", []ChainMember{{Name: "a"}, {Name: "b"}, {Name: "d"}}, nil, ChainSync{}},
		{"a member not on chain is revoked", []ChainMember{{Name: "a"}, {Name: "b"}},
			[]string{"d revoked"}, ChainSync{Revoked: []string{"d"}}},
		{"a member voted in with a hash is added", []ChainMember{{Name: "a"}, {Name: "b"}, {Name: "d"}, {Name: "e", CredHash: h2}},
			[]string{"e"}, ChainSync{Added: []string{"e"}}},
		{"a removed member voted in again is readmitted with the new hash", []ChainMember{{Name: "a"}, {Name: "b"}, {Name: "c", CredHash: h2}, {Name: "d"}},
			[]string{"c"}, ChainSync{Readmitted: []string{"c"}}},
		{"the chain's hash wins", []ChainMember{{Name: "a", CredHash: h2}, {Name: "b"}, {Name: "d"}},
			[]string{"a"}, ChainSync{Readmitted: []string{"a"}}},
		{"on chain, no hash, unknown or revoked here", []ChainMember{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}, {Name: "f"}},
			nil, ChainSync{Unknown: []string{"c", "f"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			puts, got := planChainSync(have, tc.chain, now)
			var names []string
			for _, m := range puts {
				n := m.Name
				if m.Revoked {
					n += " revoked"
					if !m.RevokedAt.Equal(now) {
						t.Errorf("%s revoked at %v", m.Name, m.RevokedAt)
					}
				} else if m.Hash != h2 {
					t.Errorf("%s written with hash %s", m.Name, m.Hash)
				}
				names = append(names, n)
			}
			if !reflect.DeepEqual(names, tc.puts) {
				t.Errorf("writes %v, want %v", names, tc.puts)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("sync %+v, want %+v", got, tc.want)
			}
		})
	}
}

// A registry that follows the chain: the administrator can no longer add
// or revoke members; a member gone from the chain is revoked (401
// revoked, its public node out of the others' peer sets); one voted in
// with its credential hash authenticates.
func TestSyncChainMembers(t *testing.T) {
	p := newPop(t)
	creds := map[string]auth.Credential{}
	for _, m := range []string{"a", "b", "c"} {
		creds[m] = p.c.addMember(p.r, m)
	}
	pa := p.add("a", "public")
	p.add("c", "public")
	if got := p.answer(pa).Strings(StaticList); len(got) != 1 {
		t.Fatalf("a's public node has %d static peers, want c's public node", len(got))
	}

	p.r.GovernByChain()
	ctx := context.Background()
	if _, err := p.r.AddMember(ctx, admin, "x"); !errors.Is(err, ErrChainGoverned) {
		t.Fatalf("admin add on a chain-governed registry: %v", err)
	}
	if _, err := p.r.RevokeMember(ctx, admin, "b"); !errors.Is(err, ErrChainGoverned) {
		t.Fatalf("admin revoke on a chain-governed registry: %v", err)
	}

	e, _ := auth.New("e")
	sync, err := p.r.SyncChainMembers(ctx, []ChainMember{{Name: "a"}, {Name: "b"}, {Name: "e", CredHash: auth.Hash(e.Secret)}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(sync, ChainSync{Added: []string{"e"}, Revoked: []string{"c"}}) {
		t.Fatalf("sync %+v", sync)
	}
	if _, err := p.r.Authenticate(creds["c"].String()); !errors.Is(err, ErrRevoked) {
		t.Fatalf("c after it left the chain: %v, want ErrRevoked", err)
	}
	if who, err := p.r.Authenticate(e.String()); err != nil || who.Name != "e" {
		t.Fatalf("e voted in: %+v, %v", who, err)
	}
	if got := p.answer(pa).Strings(StaticList); len(got) != 0 {
		t.Fatalf("c's public node is still in a's peer set: %v", got)
	}
	// The same list again changes nothing.
	if again, err := p.r.SyncChainMembers(ctx, []ChainMember{{Name: "a"}, {Name: "b"}, {Name: "e", CredHash: auth.Hash(e.Secret)}}); err != nil || !again.Empty() {
		t.Fatalf("second sync: %+v, %v", again, err)
	}
	if _, err := p.r.SyncChainMembers(ctx, []ChainMember{{Name: "Bad name"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad name from the chain: %v", err)
	}
}
