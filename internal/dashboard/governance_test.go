package dashboard_test

import (
	"encoding/hex"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"

	"github.com/consortium/consortium/internal/dashboard"
	"github.com/consortium/consortium/internal/governance"
	"github.com/consortium/consortium/internal/registry"
)

// govChain is a governance state of the devnet's four members with real
// validator keys, and what it takes to open and vote on proposals in it.
type govChain struct {
	t    *testing.T
	keys map[string]ed25519.PrivKey
	s    *governance.State
	h    uint64
}

func newGovChain(t *testing.T, names ...string) *govChain {
	g := &govChain{t: t, keys: map[string]ed25519.PrivKey{}, h: 1}
	var ms []governance.Member
	for _, n := range names {
		g.keys[n] = ed25519.GenPrivKeyFromSecret([]byte("dashboard " + n))
		ms = append(ms, governance.Member{Name: n, PubKey: g.keys[n].PubKey().(ed25519.PubKey), Power: 10})
	}
	s, err := governance.NewState("dash-chain", ms, governance.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	g.s = s
	return g
}

func (g *govChain) apply(tx []byte, err error) {
	g.t.Helper()
	if err != nil {
		g.t.Fatal(err)
	}
	g.h++
	if g.s, _, _, err = governance.Apply(g.s, tx, g.h); err != nil {
		g.t.Fatal(err)
	}
}

func (g *govChain) addr(name string) string {
	return strings.ToUpper(hex.EncodeToString(g.keys[name].PubKey().Address()))
}

// The consensus panel of a registrar that follows the chain lists the
// open proposals: who signed, who is missing, and the fault tolerance
// before and after given the validators the last commit lacks; a vote
// cast later reaches an open page without any registry change.
func TestStreamShowsGovernance(t *testing.T) {
	g := newGovChain(t, "acme", "bank", "coop", "dair")
	newKey := ed25519.GenPrivKeyFromSecret([]byte("dashboard e")).PubKey().(ed25519.PubKey)
	p := governance.Proposal{ChainID: "dash-chain", Anchor: 1,
		Action: governance.Action{Kind: governance.ActionAdd, Member: "erin", PubKey: newKey, Power: 10}}
	g.apply(governance.SignProposal(g.keys["acme"], p))
	var cur atomic.Pointer[governance.State]
	cur.Store(g.s)
	r := newRegistrar(t, setup{ttl: time.Hour, dash: dashboard.Config{
		Tick: 50 * time.Millisecond,
		Governance: func() (*governance.State, uint64) {
			return cur.Load(), 7
		},
	}})
	d := buildDevnet(t, devnetMembers)
	d.register(t, r)
	var val *node
	for _, x := range d.nodes {
		if x.member == "bank" && x.role == "validator" {
			val = x
		}
	}
	s := r.stream(d.creds["bank"]) // a member, not the administrator: proposals are every member's business
	if st := s.snapshot(); st.Chain != nil {
		t.Fatalf("a chain before any consensus report: %+v", st.Chain)
	}
	// coop's validator did not sign the last commit.
	var votes []registry.ValidatorVote
	for _, n := range []string{"acme", "bank", "coop", "dair"} {
		votes = append(votes, registry.ValidatorVote{Address: g.addr(n), Name: n, Power: 10, Signed: n != "coop"})
	}
	val.status.Consensus = &registry.ConsensusStatus{Height: 42, Proposer: g.addr("acme"), Validator: g.addr("bank"), Validators: votes}
	r.renew(d.creds["bank"], val)

	got := s.until(2*time.Second, func(dl delta) bool { return dl.Chain != nil && dl.Chain.Governance != nil })
	gv := got.Chain.Governance
	if gv.Height != 7 || gv.Validators != 4 || gv.Tolerates != 1 || !slices.Equal(gv.Offline, []string{"coop"}) || len(gv.Proposals) != 1 {
		t.Fatalf("governance %+v", gv)
	}
	pv := gv.Proposals[0]
	if pv.Kind != "add" || pv.Member != "erin" || pv.Proposer != "acme" || !slices.Equal(pv.Votes, []string{"acme"}) ||
		!slices.Equal(pv.Missing, []string{"bank", "coop", "dair"}) {
		t.Fatalf("proposal %+v", pv)
	}
	// coop down and erin's validator not yet up: 30 of 50 online, 34
	// needed. The 1 → 2 trap, said before anyone votes.
	if pv.Before != "4 validators, tolerates 1 (coop offline)" || !strings.HasPrefix(pv.After, "5 validators") || pv.Halts == "" {
		t.Fatalf("preview: before %q after %q halts %q", pv.Before, pv.After, pv.Halts)
	}

	// bank votes; the page hears of it on its own.
	g.apply(governance.SignVote(g.keys["bank"], "dash-chain", p.ID()))
	cur.Store(g.s)
	got = s.until(2*time.Second, func(dl delta) bool {
		return dl.Chain != nil && dl.Chain.Governance != nil && len(dl.Chain.Governance.Proposals) == 1 &&
			len(dl.Chain.Governance.Proposals[0].Votes) == 2
	})
	if pv := got.Chain.Governance.Proposals[0]; !slices.Equal(pv.Missing, []string{"coop", "dair"}) || pv.Power != 20 {
		t.Fatalf("after bank's vote: %+v", pv)
	}
}

// Without a chain follower the panel carries no governance section.
func TestChainWithoutGovernance(t *testing.T) {
	r := newRegistrar(t, setup{ttl: time.Hour})
	d := buildDevnet(t, devnetMembers)
	d.register(t, r)
	var val *node
	for _, x := range d.nodes {
		if x.member == "bank" && x.role == "validator" {
			val = x
		}
	}
	s := r.stream(r.admin)
	s.snapshot()
	val.status.Consensus = &registry.ConsensusStatus{Height: 3, Validators: []registry.ValidatorVote{{Address: strings.Repeat("a", 40), Name: "bank", Power: 1, Signed: true}}}
	r.renew(d.creds["bank"], val)
	got := s.until(2*time.Second, func(dl delta) bool { return dl.Chain != nil })
	if got.Chain.Governance != nil {
		t.Fatalf("governance without a follower: %+v", got.Chain.Governance)
	}
}

// The page shows each open proposal with who signed, who is missing and
// the fault tolerance before and after, and says so when the change
// would halt the chain given the validators offline now.
func TestBrowserGovernance(t *testing.T) {
	browser := newBrowser(t)
	g := newGovChain(t, "acme", "bank", "coop", "dair")
	newKey := ed25519.GenPrivKeyFromSecret([]byte("dashboard e")).PubKey().(ed25519.PubKey)
	add := governance.Proposal{ChainID: "dash-chain", Anchor: 1,
		Action: governance.Action{Kind: governance.ActionAdd, Member: "erin", PubKey: newKey, Power: 10}}
	g.apply(governance.SignProposal(g.keys["acme"], add))
	rm := governance.Proposal{ChainID: "dash-chain", Anchor: 1, Action: governance.Action{Kind: governance.ActionRemove, Member: "dair"}}
	g.apply(governance.SignProposal(g.keys["bank"], rm))
	st := g.s
	r := newRegistrar(t, setup{ttl: time.Hour, dash: dashboard.Config{
		Governance: func() (*governance.State, uint64) { return st, 9 },
	}})
	d := buildDevnet(t, devnetMembers)
	d.register(t, r)
	page := newTab(t, browser)
	page.signIn(r.URL, d.creds["acme"])
	var val *node
	for _, x := range d.nodes {
		if x.member == "acme" && x.role == "validator" {
			val = x
		}
	}
	var votes []registry.ValidatorVote
	for _, n := range []string{"acme", "bank", "coop", "dair"} {
		votes = append(votes, registry.ValidatorVote{Address: g.addr(n), Name: n, Power: 10, Signed: n != "coop"})
	}
	val.status.Consensus = &registry.ConsensusStatus{Height: 50, Proposer: g.addr("bank"), Validator: g.addr("acme"), Validators: votes}
	r.renew(d.creds["acme"], val)
	page.waitJS(5*time.Second, `document.querySelectorAll('#chain .proposal').length === 2`)
	head := eval[string](page, `document.querySelector('#chain .gov h3').textContent`)
	if !strings.Contains(head, "4 validators, tolerates 1 (coop offline)") || !strings.Contains(head, "power 27 of 40") {
		t.Errorf("validator set line %q", head)
	}
	texts := eval[[]string](page, `Array.from(document.querySelectorAll('#chain .proposal')).map(p => p.textContent)`)
	var addText, rmText string
	for _, s := range texts {
		switch {
		case strings.Contains(s, "add member erin"):
			addText = s
		case strings.Contains(s, "remove member dair"):
			rmText = s
		}
	}
	for _, want := range []string{"proposed by acme", "signed: acme (power 10 of 27)", "missing: bank, coop, dair",
		"fault tolerance: 4 validators, tolerates 1 (coop offline) → 5 validators"} {
		if !strings.Contains(addText, want) {
			t.Errorf("the add proposal %q lacks %q", addText, want)
		}
	}
	// Removing dair with coop down leaves acme and bank: 20 of 30, not
	// more than 2/3. Adding erin while her node is not up: 30 of 50.
	if halts := eval[int](page, `document.querySelectorAll('#chain .proposal.halts .warn').length`); halts != 2 {
		t.Errorf("%d proposals flagged as halting the chain, want 2: %q", halts, texts)
	}
	if !strings.Contains(rmText, "3 validators, tolerates 0 (coop offline)") {
		t.Errorf("the remove proposal %q", rmText)
	}
}
