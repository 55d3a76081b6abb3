package consensus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/consortium/consortium/internal/governance"
)

const testChainID = "consortium-test"

// govFixture is a four-member chain's governance: the members' validator
// keys and the app's gov, read from a real CometBFT genesis file.
type govFixture struct {
	g    *gov
	keys map[string]ed25519.PrivKey
	dir  string
}

// testGov writes a CometBFT genesis of members a-d (power 10 each) and
// opens the governance of a node whose data directory is dataDir ("" for
// none: the journal stays in memory).
func testGov(t testing.TB, dataDir string) govFixture {
	t.Helper()
	dir := t.TempDir()
	f := govFixture{keys: map[string]ed25519.PrivKey{}, dir: dir}
	doc := &cmttypes.GenesisDoc{ChainID: testChainID, GenesisTime: time.Unix(1000, 0).UTC(), InitialHeight: 1}
	for _, m := range []string{"a", "b", "c", "d"} {
		k := ed25519.GenPrivKeyFromSecret([]byte(m))
		f.keys[m] = k
		doc.Validators = append(doc.Validators, cmttypes.GenesisValidator{Name: m, PubKey: k.PubKey(), Power: 10})
	}
	if err := doc.ValidateAndComplete(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "genesis.json")
	if err := doc.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	g, err := newGov(path, dataDir)
	if err != nil {
		t.Fatal(err)
	}
	f.g = g
	return f
}

func (f govFixture) propose(t testing.TB, by string, a governance.Action) ([]byte, governance.ID) {
	t.Helper()
	p := governance.Proposal{ChainID: testChainID, Anchor: 1, Action: a}
	tx, err := governance.SignProposal(f.keys[by], p)
	if err != nil {
		t.Fatal(err)
	}
	return tx, p.ID()
}

func (f govFixture) vote(t testing.TB, by string, id governance.ID) []byte {
	t.Helper()
	tx, err := governance.SignVote(f.keys[by], testChainID, id)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// govApp is an app on fake geth whose governance journal lives in dataDir.
func govApp(t *testing.T, dataDir string) (*app, govFixture) {
	t.Helper()
	a, _ := testApp(t, &fakeEngine{newPayload: valid, fcu: validFCU, head: &types.Header{Number: big.NewInt(41), Difficulty: new(big.Int)}})
	f := testGov(t, dataDir)
	a.gov = f.g
	if _, err := a.InitChain(context.Background(), &abci.InitChainRequest{InitialHeight: 1, Validators: f.g.view().state.Validators()}); err != nil {
		t.Fatal(err)
	}
	a.setLastFinal(testParent)
	return a, f
}

// A proposal and its votes travel as ABCI transactions: CheckTx admits
// them, ProcessProposal accepts a block that carries them after the
// payload, FinalizeBlock applies them and returns the validator update
// when the third of four votes is in, Commit journals the state and the
// query serves it. The same vote again, and a forged one, are refused.
func TestGovernanceTransactionsChangeTheValidatorSet(t *testing.T) {
	data := t.TempDir()
	a, f := govApp(t, data)
	ctx := context.Background()
	newKey := ed25519.GenPrivKeyFromSecret([]byte("e")).PubKey().(ed25519.PubKey)
	prop, id := f.propose(t, "a", governance.Action{Kind: governance.ActionAdd, Member: "e", PubKey: newKey, Power: 10})
	voteB, voteC := f.vote(t, "b", id), f.vote(t, "c", id)

	for _, tx := range [][]byte{prop} {
		if res, err := a.CheckTx(ctx, &abci.CheckTxRequest{Tx: tx}); err != nil || res.Code != 0 {
			t.Fatalf("CheckTx(proposal) = %v, %v", res, err)
		}
	}
	// A vote for a proposal not yet on chain is refused by CheckTx (the
	// mempool takes it again once the proposal is in a block).
	if res, _ := a.CheckTx(ctx, &abci.CheckTxRequest{Tx: voteB}); res.Code != governance.Code(governance.ErrUnknownProposal) || res.Codespace != governance.Codespace {
		t.Fatalf("CheckTx(vote before the proposal) = %+v", res)
	}

	p := goodPayload(time.Unix(1010, 0), nil)
	payload, _ := EncodePayload(p)
	txs := [][]byte{payload, prop, voteB}
	if res, _ := a.ProcessProposal(ctx, &abci.ProcessProposalRequest{Height: 42, Time: time.Unix(1010, 0), Txs: txs}); res.Status != abci.PROCESS_PROPOSAL_STATUS_ACCEPT {
		t.Fatalf("ProcessProposal(payload, proposal, vote) = %v", res.Status)
	}
	res, err := a.FinalizeBlock(ctx, &abci.FinalizeBlockRequest{Height: 42, Time: time.Unix(1010, 0), Txs: txs})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.TxResults) != 3 || res.TxResults[1].Code != 0 || res.TxResults[2].Code != 0 || len(res.ValidatorUpdates) != 0 {
		t.Fatalf("block with 2 of 4 votes: results %v, updates %v; want 3 OK results and no update", res.TxResults, res.ValidatorUpdates)
	}
	if _, err := a.Commit(ctx, &abci.CommitRequest{}); err != nil {
		t.Fatal(err)
	}
	if v := a.gov.view(); v.height != 42 || len(v.state.Pending) != 1 || len(v.state.Members) != 4 {
		t.Fatalf("after 2 votes: height %d, %d pending, %d members", v.height, len(v.state.Pending), len(v.state.Members))
	}

	// b's vote again, and c's vote signed by d's key: refused, no change.
	forged, _ := governance.DecodeTx(voteC)
	forged.Signer = f.keys["d"].PubKey().(ed25519.PubKey)
	forgedTx, _ := governance.EncodeTx(forged)
	for name, tx := range map[string][]byte{"replayed vote": voteB, "forged vote": forgedTx, "garbage": append([]byte{governance.TxPrefix}, 1, 2, 3)} {
		res, err := a.CheckTx(ctx, &abci.CheckTxRequest{Tx: tx})
		if err != nil || res.Code == 0 || res.Codespace != governance.Codespace {
			t.Errorf("CheckTx(%s) = %+v, %v; want a governance refusal", name, res, err)
		}
	}

	// The third vote passes the proposal: e's key enters the set.
	// (The fake chain decides block 42 again: the app imports what CometBFT
	// decided, and the journal records a height again as a replay would.)
	res, err = a.FinalizeBlock(ctx, &abci.FinalizeBlockRequest{Height: 42, Time: time.Unix(1010, 0), Txs: [][]byte{payload, voteC}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ValidatorUpdates) != 1 || !bytes.Equal(res.ValidatorUpdates[0].PubKeyBytes, newKey) || res.ValidatorUpdates[0].Power != 10 {
		t.Fatalf("validator updates after the third vote: %v", res.ValidatorUpdates)
	}
	if _, err := a.Commit(ctx, &abci.CommitRequest{}); err != nil {
		t.Fatal(err)
	}
	q, err := a.Query(ctx, &abci.QueryRequest{Path: QueryGovernanceState})
	if err != nil || q.Code != 0 {
		t.Fatalf("query = %v, %v", q, err)
	}
	s, err := governance.Unmarshal(q.Value)
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := s.Member("e"); !ok || !bytes.Equal(m.PubKey, newKey) || len(s.Pending) != 0 {
		t.Fatalf("queried state: %d members, e %v, %d pending", len(s.Members), ok, len(s.Pending))
	}
	if !bytes.Equal(res.AppHash, governance.AppHash(p.Hash().Bytes(), s)) {
		t.Fatalf("app hash %x is not AppHash(EL hash, state)", res.AppHash)
	}

	// A restarted node reads the journal and reports the same state.
	g2, err := newGov(filepath.Join(f.dir, "genesis.json"), data)
	if err != nil {
		t.Fatal(err)
	}
	if last, ok := g2.recordedUpTo(); !ok || last != 42 {
		t.Fatalf("journal after restart: last %d, %v", last, ok)
	}
	s2, err := g2.rewind(42, p.Hash().Bytes())
	if err != nil || !bytes.Equal(s2.Marshal(), s.Marshal()) {
		t.Fatalf("state after restart differs: %v", err)
	}
}

// A proposer that puts a refused governance transaction into its block
// (a forged signature, a non-governance transaction after the payload) has
// its block refused.
func TestProcessProposalRefusesBadGovernance(t *testing.T) {
	a, f := govApp(t, "")
	ctx := context.Background()
	newKey := ed25519.GenPrivKeyFromSecret([]byte("e")).PubKey().(ed25519.PubKey)
	prop, _ := f.propose(t, "a", governance.Action{Kind: governance.ActionAdd, Member: "e", PubKey: newKey, Power: 10})
	forged, _ := governance.DecodeTx(prop)
	forged.Signature[0] ^= 1
	forgedTx, _ := governance.EncodeTx(forged)
	outsider, _ := governance.SignProposal(ed25519.GenPrivKeyFromSecret([]byte("x")), governance.Proposal{ChainID: testChainID, Anchor: 1,
		Action: governance.Action{Kind: governance.ActionRemove, Member: "b"}})
	payload, _ := EncodePayload(goodPayload(time.Unix(1010, 0), nil))
	for name, gtx := range map[string][]byte{"forged signature": forgedTx, "non-validator": outsider, "same proposal twice": nil} {
		txs := [][]byte{payload, gtx}
		if gtx == nil {
			txs = [][]byte{payload, prop, prop}
		}
		res, err := a.ProcessProposal(ctx, &abci.ProcessProposalRequest{Height: 42, Time: time.Unix(1010, 0), Txs: txs})
		if err != nil || res.Status != abci.PROCESS_PROPOSAL_STATUS_REJECT {
			t.Errorf("ProcessProposal(%s) = %v, %v; want REJECT", name, res, err)
		}
	}
	if v := a.gov.view(); len(v.state.Pending) != 0 {
		t.Fatalf("state changed by refused proposals: %d pending", len(v.state.Pending))
	}
}

// FuzzCheckTx: whatever a client sends to any node's mempool, CheckTx
// answers with a code and never panics; only a valid governance
// transaction is admitted.
func FuzzCheckTx(f *testing.F) {
	g := testGov(f, "")
	newKey := ed25519.GenPrivKeyFromSecret([]byte("e")).PubKey().(ed25519.PubKey)
	prop, id := g.propose(f, "a", governance.Action{Kind: governance.ActionAdd, Member: "e", PubKey: newKey, Power: 10})
	f.Add(prop)
	f.Add(g.vote(f, "b", id))
	f.Add([]byte{governance.TxPrefix})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, tx []byte) {
		a, _ := testApp(t, &fakeEngine{})
		a.gov = g.g
		res, err := a.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: tx})
		if err != nil || res == nil {
			t.Fatalf("CheckTx = %v, %v", res, err)
		}
		if res.Code == 0 && !bytes.Equal(tx, prop) {
			t.Fatalf("CheckTx admitted %x", tx)
		}
	})
}

// The dashboard names validators after their members, including one the
// members voted in after the genesis.
func TestMemberNames(t *testing.T) {
	a, f := govApp(t, "")
	names := (&Node{app: a}).MemberNames()
	if len(names) != 4 || names[f.keys["b"].PubKey().Address().String()] != "b" {
		t.Fatalf("names %v", names)
	}
	newKey := ed25519.GenPrivKeyFromSecret([]byte("e")).PubKey().(ed25519.PubKey)
	prop, id := f.propose(t, "a", governance.Action{Kind: governance.ActionAdd, Member: "e", PubKey: newKey, Power: 10})
	g := governance.Block(a.gov.view().state, [][]byte{prop, f.vote(t, "b", id), f.vote(t, "c", id)}, 2)
	a.gov.finalized(2, g.State, nil)
	if err := a.gov.commit(); err != nil {
		t.Fatal(err)
	}
	if n := (&Node{app: a}).MemberNames(); n[newKey.Address().String()] != "e" || len(n) != 5 {
		t.Fatalf("names after e was voted in: %v", n)
	}
}

// A journal torn by a machine crash (cut short) or damaged on disk is
// moved aside and the node starts as if it had none, so the handshake
// replays from height 1; a journal whose checksum holds but whose content
// is no journal of ours stops the start.
func TestGovJournalDamagedIsSetAside(t *testing.T) {
	data := t.TempDir()
	_, f := govApp(t, data)
	s := f.g.view().state
	for h := uint64(1); h <= 3; h++ {
		f.g.finalized(h, s, []byte{byte(h)})
		if err := f.g.commit(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(data, journalFile)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a temporary file is left beside the journal: %v", err)
	}
	genesis := filepath.Join(f.dir, "genesis.json")
	if g, err := newGov(genesis, data); err != nil || g.damaged != nil {
		t.Fatalf("intact journal: %v, %v", err, g.damaged)
	} else if last, ok := g.recordedUpTo(); !ok || last != 3 {
		t.Fatalf("intact journal: last %d, %v", last, ok)
	}

	if err := os.WriteFile(path, good[:len(good)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := newGov(genesis, data)
	if err != nil {
		t.Fatalf("torn journal stopped the start: %v", err)
	}
	if _, ok := g.recordedUpTo(); ok || g.damaged == nil {
		t.Fatalf("torn journal was read (damaged %v)", g.damaged)
	}
	if aside, err := os.ReadFile(path + ".damaged"); err != nil || !bytes.Equal(aside, good[:len(good)/2]) {
		t.Fatalf("torn journal not kept aside: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("torn journal still in place: %v", err)
	}

	// Valid checksum, not a journal: refused, left in place.
	junk := append([]byte{0xc0}, make([]byte, 32)...)
	sum := sha256.Sum256(append([]byte("consortium governance journal v1\n"), 0xc0))
	copy(junk[1:], sum[:])
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newGov(genesis, data); !errors.Is(err, ErrConfig) {
		t.Fatalf("a journal that is not one: %v, want ErrConfig", err)
	}
}
