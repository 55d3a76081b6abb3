package registry

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/store"
	"github.com/consortium/consortium/internal/store/sqlite"
	"github.com/consortium/consortium/internal/testutil"
)

// authAs is who cred authenticates as, failing the test on an error.
func authAs(t *testing.T, r *Registry, cred auth.Credential) Principal {
	t.Helper()
	p, err := r.Authenticate(cred.String())
	if err != nil {
		t.Fatalf("%s's credential: %v", cred.Principal, err)
	}
	return p
}

// A member rotates its own credential: the new one works at once, the old
// one until the grace period ends and then never again; the member's nodes
// and the peer sets do not notice.
func TestRotateCredentialGrace(t *testing.T) {
	p := newPop(t)
	old := p.c.addMember(p.r, "a")
	p.c.addMember(p.r, "b")
	pa, pb := p.add("a", "public"), p.add("b", "public")
	before := p.answer(pb).Strings(StaticList)
	idx := p.r.Index()

	rot, err := p.r.RotateCredential(context.Background(), authAs(t, p.r, old), "a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !rot.PreviousValidUntil.Equal(p.c.clock.Now().UTC().Add(time.Hour)) {
		t.Fatalf("previous valid until %v", rot.PreviousValidUntil)
	}
	if who := authAs(t, p.r, rot.Credential); who.Name != "a" || who.Previous {
		t.Fatalf("new credential authenticates as %+v", who)
	}
	if who := authAs(t, p.r, old); who.Name != "a" || !who.Previous {
		t.Fatalf("old credential in its grace authenticates as %+v", who)
	}
	ms, _ := p.r.Members(admin)
	if ms[0].Name != "a" || ms[0].PreviousCredentialUntil == nil || !ms[0].PreviousCredentialUntil.Equal(rot.PreviousValidUntil) {
		t.Fatalf("member view during the grace: %+v", ms[0])
	}
	if got := p.answer(pb).Strings(StaticList); !reflect.DeepEqual(got, before) || p.r.Index() != idx {
		t.Fatalf("rotation moved b's answer: %v -> %v (index %d -> %d)", before, got, idx, p.r.Index())
	}
	if _, err := p.r.Renew(context.Background(), Principal{Name: "a"}, pa.id, nil); err != nil {
		t.Fatalf("a's node renews after the rotation: %v", err)
	}

	p.c.clock.Advance(time.Hour)
	if _, err := p.r.Authenticate(old.String()); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("old credential after the grace: %v, want ErrUnauthenticated", err)
	}
	authAs(t, p.r, rot.Credential)
	if ms, _ := p.r.Members(admin); ms[0].PreviousCredentialUntil != nil {
		t.Fatalf("member view after the grace: %+v", ms[0])
	}
}

// Grace 0 ends the old credential at once (one that leaked); a second
// rotation within a grace period ends the first credential: two at most.
func TestRotateCredentialAtMostTwo(t *testing.T) {
	p := newPop(t)
	c1 := p.c.addMember(p.r, "a")
	ctx := context.Background()
	r2, err := p.r.RotateCredential(ctx, authAs(t, p.r, c1), "a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	r3, err := p.r.RotateCredential(ctx, authAs(t, p.r, r2.Credential), "a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.r.Authenticate(c1.String()); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("first credential after two rotations: %v", err)
	}
	if who := authAs(t, p.r, r2.Credential); !who.Previous {
		t.Fatalf("second credential: %+v", who)
	}
	r4, err := p.r.RotateCredential(ctx, authAs(t, p.r, r3.Credential), "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !r4.PreviousValidUntil.IsZero() {
		t.Fatalf("grace 0: previous valid until %v", r4.PreviousValidUntil)
	}
	for _, c := range []auth.Credential{r2.Credential, r3.Credential} {
		if _, err := p.r.Authenticate(c.String()); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("credential replaced with grace 0: %v", err)
		}
	}
	authAs(t, p.r, r4.Credential)
}

// Who may rotate what; every refusal leaves both credentials as they were.
func TestRotateCredentialRefusals(t *testing.T) {
	p := newPop(t)
	ca := p.c.addMember(p.r, "a")
	cb := p.c.addMember(p.r, "b")
	ctx := context.Background()
	rot, err := p.r.RotateCredential(ctx, authAs(t, p.r, ca), "a", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		p     Principal
		whose string
		grace time.Duration
		want  error
	}{
		{"another member's", authAs(t, p.r, cb), "a", time.Hour, ErrForbidden},
		{"with the replaced credential", authAs(t, p.r, ca), "a", time.Hour, ErrForbidden},
		{"negative grace", authAs(t, p.r, rot.Credential), "a", -time.Second, ErrInvalid},
		{"grace over the maximum", authAs(t, p.r, rot.Credential), "a", MaxCredentialGrace + time.Second, ErrInvalid},
		{"no such member", admin, "zz", time.Hour, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.r.RotateCredential(ctx, tc.p, tc.whose, tc.grace); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if who := authAs(t, p.r, ca); !who.Previous {
				t.Fatalf("replaced credential after a refusal: %+v", who)
			}
			authAs(t, p.r, rot.Credential)
			authAs(t, p.r, cb)
		})
	}
	if _, err := p.r.RevokeMember(ctx, admin, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.r.RotateCredential(ctx, admin, "b", time.Hour); !errors.Is(err, ErrRevoked) {
		t.Fatalf("rotating a revoked member's credential: %v", err)
	}
	// The administrator may rotate a member's credential (a member that
	// lost its own), except where the chain decides the members.
	byAdmin, err := p.r.RotateCredential(ctx, admin, "a", 0)
	if err != nil {
		t.Fatal(err)
	}
	authAs(t, p.r, byAdmin.Credential)
	p.r.GovernByChain()
	if _, err := p.r.RotateCredential(ctx, admin, "a", 0); !errors.Is(err, ErrChainGoverned) {
		t.Fatalf("administrator's rotation on a chain-governed registry: %v", err)
	}
	authAs(t, p.r, byAdmin.Credential)
}

// On a chain-governed registry a member voted in rotates its credential,
// and following the chain again keeps the rotation; a new vote with a new
// hash replaces it.
func TestRotatedCredentialSurvivesChainSync(t *testing.T) {
	p := newPop(t)
	p.c.addMember(p.r, "a")
	p.r.GovernByChain()
	ctx := context.Background()
	e, _ := auth.New("e")
	chain := []ChainMember{{Name: "a"}, {Name: "e", CredHash: auth.Hash(e.Secret)}}
	if _, err := p.r.SyncChainMembers(ctx, chain); err != nil {
		t.Fatal(err)
	}
	rot, err := p.r.RotateCredential(ctx, authAs(t, p.r, e), "e", 0)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := p.r.SyncChainMembers(ctx, chain); err != nil || !again.Empty() {
		t.Fatalf("sync after the rotation: %+v, %v", again, err)
	}
	authAs(t, p.r, rot.Credential)
	if _, err := p.r.Authenticate(e.String()); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("the credential the chain admitted, rotated with grace 0: %v", err)
	}
	e2, _ := auth.New("e")
	s, err := p.r.SyncChainMembers(ctx, []ChainMember{{Name: "a"}, {Name: "e", CredHash: auth.Hash(e2.Secret)}})
	if err != nil || !reflect.DeepEqual(s, ChainSync{Readmitted: []string{"e"}}) {
		t.Fatalf("sync with a new vote's hash: %+v, %v", s, err)
	}
	authAs(t, p.r, e2)
	if _, err := p.r.Authenticate(rot.Credential.String()); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("rotated credential after a new vote: %v", err)
	}
}

func TestPlanChainSyncRotation(t *testing.T) {
	now := time.Unix(5000, 0).UTC()
	h1, h2, h3 := strings.Repeat("1", 64), strings.Repeat("2", 64), strings.Repeat("3", 64)
	have := map[string]store.Member{
		"rotated": {Name: "rotated", Hash: h3, ChainHash: h1, PrevHash: h1, PrevUntil: now.Add(time.Hour)},
		"older":   {Name: "older", Hash: h1},
	}
	puts, got := planChainSync(have, []ChainMember{{Name: "rotated", CredHash: h1}, {Name: "older", CredHash: h1}}, now)
	if !got.Empty() || len(puts) != 1 || puts[0].Name != "older" || puts[0].ChainHash != h1 || puts[0].Hash != h1 {
		t.Fatalf("same chain: writes %+v, sync %+v; want only older's chain hash recorded", puts, got)
	}
	puts, got = planChainSync(have, []ChainMember{{Name: "rotated", CredHash: h2}, {Name: "older", CredHash: h1}}, now)
	want := store.Member{Name: "rotated", Hash: h2, ChainHash: h2}
	if !reflect.DeepEqual(got, ChainSync{Readmitted: []string{"rotated"}}) || len(puts) != 2 || !reflect.DeepEqual(puts[1], want) {
		t.Fatalf("new vote: writes %+v, sync %+v", puts, got)
	}
}

// A rotation is kept by the store: after a restart on the same SQLite file
// both credentials are accepted until the grace ends.
func TestRotationSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	clock := testutil.NewClock()
	open := func() (*Registry, func()) {
		st, err := sqlite.Open(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Open(ctx, st, Config{TTL: 30 * time.Second, FlushInterval: time.Hour, Now: clock.Now,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return r, func() { st.Close() }
	}
	r, closeR := open()
	old, err := r.AddMember(ctx, admin, "a")
	if err != nil {
		t.Fatal(err)
	}
	rot, err := r.RotateCredential(ctx, authAs(t, r, old), "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	closeR()
	r, closeR = open()
	defer closeR()
	authAs(t, r, rot.Credential)
	if who := authAs(t, r, old); !who.Previous {
		t.Fatalf("replaced credential after a restart: %+v", who)
	}
	clock.Advance(time.Minute)
	if _, err := r.Authenticate(old.String()); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("replaced credential after its grace and a restart: %v", err)
	}
}

// A rotation on one replica reaches the other through the shared store.
func TestSharedRotationReachesB(t *testing.T) {
	c := newCluster(t, 2, false)
	a, b := c.regs[0], c.regs[1]
	old := c.addMember(a, "ma")
	c.sync()
	rot, err := a.RotateCredential(context.Background(), authAs(t, a, old), "ma", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c.sync()
	if who := authAs(t, b, rot.Credential); who.Previous {
		t.Fatalf("new credential on B: %+v", who)
	}
	if who := authAs(t, b, old); !who.Previous {
		t.Fatalf("replaced credential on B: %+v", who)
	}
}
