package consensus

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/consortium/consortium/internal/governance"
)

// fakeEngine answers the app's Engine API calls from functions; a nil
// function means "geth is unreachable".
type fakeEngine struct {
	head       *types.Header
	newPayload func(engine.ExecutableData) (engine.PayloadStatusV1, error)
	fcu        func(engine.ForkchoiceStateV1, *engine.PayloadAttributes) (engine.ForkChoiceResponse, error)
	calls      atomic.Int64
}

var errDown = errors.New("connection refused")

func (f *fakeEngine) ForkchoiceUpdated(_ context.Context, s engine.ForkchoiceStateV1, a *engine.PayloadAttributes) (engine.ForkChoiceResponse, error) {
	f.calls.Add(1)
	if f.fcu == nil {
		return engine.ForkChoiceResponse{}, errDown
	}
	return f.fcu(s, a)
}

func (f *fakeEngine) GetPayload(context.Context, engine.PayloadID) (*engine.ExecutionPayloadEnvelope, error) {
	f.calls.Add(1)
	return nil, errDown
}

func (f *fakeEngine) NewPayload(_ context.Context, d engine.ExecutableData, _ []common.Hash, _ common.Hash, _ [][]byte) (engine.PayloadStatusV1, error) {
	f.calls.Add(1)
	if f.newPayload == nil {
		return engine.PayloadStatusV1{}, errDown
	}
	return f.newPayload(d)
}

func (f *fakeEngine) Head(context.Context) (*types.Header, error) {
	if f.head == nil {
		return nil, errDown
	}
	return f.head, nil
}

func (f *fakeEngine) HeaderAt(_ context.Context, n uint64) (*types.Header, error) {
	if f.head == nil {
		return nil, errDown
	}
	if f.head.Number.Uint64() == n {
		return f.head, nil
	}
	return &types.Header{Number: new(big.Int).SetUint64(n), Time: n * 10, Difficulty: new(big.Int)}, nil
}

func (f *fakeEngine) Close() {}

func valid(engine.ExecutableData) (engine.PayloadStatusV1, error) {
	return engine.PayloadStatusV1{Status: engine.VALID}, nil
}

func validFCU(engine.ForkchoiceStateV1, *engine.PayloadAttributes) (engine.ForkChoiceResponse, error) {
	return engine.ForkChoiceResponse{PayloadStatus: engine.PayloadStatusV1{Status: engine.VALID}}, nil
}

func testApp(t *testing.T, eng Engine) (*app, context.CancelFunc) {
	t.Helper()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a := newApp(ctx, eng, testGov(t, "").g, common.Address{}, slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	a.retryMin, a.retryMax = time.Millisecond, 5*time.Millisecond
	return a, cancel
}

func TestAppRefusesGarbage(t *testing.T) {
	a, _ := testApp(t, &fakeEngine{newPayload: valid, fcu: validFCU})
	a.setLastFinal(testParent)
	ctx := context.Background()
	for _, tx := range [][]byte{nil, {0x00}, []byte("garbage"), make([]byte, 1000)} {
		res, err := a.CheckTx(ctx, &abci.CheckTxRequest{Tx: tx})
		if err != nil || res.Code == 0 {
			t.Errorf("CheckTx(%x) = %v, %v; want a non-zero code", tx, res, err)
		}
	}
	good, _ := EncodePayload(goodPayload(time.Unix(1010, 0), nil))
	for name, txs := range map[string][][]byte{
		"no tx":          nil,
		"garbage":        {[]byte("garbage")},
		"two payloads":   {good, good},
		"payload + junk": {good, {0x01}},
	} {
		res, err := a.ProcessProposal(ctx, &abci.ProcessProposalRequest{Height: 42, Time: time.Unix(1010, 0), Txs: txs})
		if err != nil || res.Status != abci.PROCESS_PROPOSAL_STATUS_REJECT {
			t.Errorf("%s: ProcessProposal = %v, %v; want REJECT", name, res, err)
		}
	}
	res, err := a.ProcessProposal(ctx, &abci.ProcessProposalRequest{Height: 42, Time: time.Unix(1010, 0), Txs: [][]byte{good}})
	if err != nil || res.Status != abci.PROCESS_PROPOSAL_STATUS_ACCEPT {
		t.Errorf("good payload: ProcessProposal = %v, %v; want ACCEPT", res, err)
	}
}

func TestProcessProposalFollowsGeth(t *testing.T) {
	good, _ := EncodePayload(goodPayload(time.Unix(1010, 0), nil))
	for _, status := range []string{engine.INVALID, engine.SYNCING, engine.ACCEPTED, ""} {
		eng := &fakeEngine{fcu: validFCU}
		if status != "" {
			eng.newPayload = func(engine.ExecutableData) (engine.PayloadStatusV1, error) {
				return engine.PayloadStatusV1{Status: status}, nil
			}
		}
		a, _ := testApp(t, eng)
		a.setLastFinal(testParent)
		res, err := a.ProcessProposal(context.Background(), &abci.ProcessProposalRequest{Height: 42, Time: time.Unix(1010, 0), Txs: [][]byte{good}})
		if err != nil || res.Status != abci.PROCESS_PROPOSAL_STATUS_REJECT {
			t.Errorf("geth says %q: ProcessProposal = %v, %v; want REJECT", status, res, err)
		}
	}
}

func TestPrepareProposalWithoutGeth(t *testing.T) {
	a, _ := testApp(t, &fakeEngine{})
	a.setLastFinal(testParent)
	res, err := a.PrepareProposal(context.Background(), &abci.PrepareProposalRequest{
		Height: 42, Time: time.Unix(1010, 0), MaxTxBytes: 1 << 20, Txs: [][]byte{[]byte("mempool junk")},
	})
	if err != nil {
		t.Fatalf("PrepareProposal returned an error (a consensus failure in CometBFT): %v", err)
	}
	if len(res.Txs) != 0 {
		t.Fatalf("PrepareProposal proposed %d txs without geth; want an empty block", len(res.Txs))
	}
}

func TestFinalizeBlockRetriesUntilGethAnswers(t *testing.T) {
	var fails atomic.Int64
	eng := &fakeEngine{fcu: validFCU}
	eng.newPayload = func(d engine.ExecutableData) (engine.PayloadStatusV1, error) {
		if fails.Add(1) <= 3 {
			return engine.PayloadStatusV1{}, errDown
		}
		return valid(d)
	}
	a, _ := testApp(t, eng)
	a.setLastFinal(testParent)
	p := goodPayload(time.Unix(1010, 0), nil)
	tx, _ := EncodePayload(p)
	res, err := a.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: 42, Time: time.Unix(1010, 0), Txs: [][]byte{tx}})
	if err != nil {
		t.Fatal(err)
	}
	if want := governance.AppHash(p.Hash().Bytes(), a.gov.view().state); !bytes.Equal(res.AppHash, want) || len(res.TxResults) != 1 {
		t.Fatalf("app hash %x, %d results; want %x, 1", res.AppHash, len(res.TxResults), want)
	}
	if fails.Load() != 4 {
		t.Fatalf("newPayload called %d times, want 4 (3 failures, then success)", fails.Load())
	}
	if got := a.lastFinal(); got.Hash != p.Hash() || got.Number != 42 {
		t.Fatalf("last final %+v after FinalizeBlock", got)
	}
	if s := a.status.get(); s.Height != 42 || s.ELHash != p.Hash() {
		t.Fatalf("status %+v", s)
	}
}

func TestFinalizeBlockGivesUpOnStop(t *testing.T) {
	a, cancel := testApp(t, &fakeEngine{}) // geth never answers
	p := goodPayload(time.Unix(1010, 0), nil)
	tx, _ := EncodePayload(p)
	time.AfterFunc(50*time.Millisecond, cancel)
	done := make(chan struct{})
	go func() {
		defer close(done)
		res, err := a.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: 42, Txs: [][]byte{tx}})
		if err != nil || !bytes.Equal(res.AppHash, governance.AppHash(p.Hash().Bytes(), a.gov.view().state)) {
			t.Errorf("FinalizeBlock on stop = %v, %v; want the block's hash and no error", res, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("FinalizeBlock did not return after the node stopped")
	}
}

func TestInfoReportsGethHead(t *testing.T) {
	h := &types.Header{Number: big.NewInt(7), Time: 77, Difficulty: new(big.Int)}
	a, _ := testApp(t, &fakeEngine{head: h})
	ctx := context.Background()

	// No journal yet: nothing executed, CometBFT starts from InitChain
	// and replays every block.
	res, err := a.Info(ctx, &abci.InfoRequest{})
	if err != nil || res.LastBlockHeight != 0 {
		t.Fatalf("Info without a journal = %v, %v; want height 0", res, err)
	}
	if _, err := a.InitChain(ctx, &abci.InitChainRequest{InitialHeight: 2}); !errors.Is(err, ErrConfig) {
		t.Fatalf("InitChain with initial height 2 = %v; want ErrConfig", err)
	}
	if _, err := a.InitChain(ctx, &abci.InitChainRequest{InitialHeight: 1, Validators: a.gov.view().state.Validators()}); err != nil {
		t.Fatal(err)
	}
	s := a.gov.view().state
	for height := uint64(1); height <= 9; height++ {
		a.gov.finalized(height, s, []byte{byte(height)})
		if err := a.gov.commit(); err != nil {
			t.Fatal(err)
		}
	}

	// Once the handshake is done, Info answers from the last commit and
	// neither asks geth nor rewinds (the RPC's abci_info on a running node).
	res, err = a.Info(ctx, &abci.InfoRequest{})
	if err != nil || res.LastBlockHeight != 9 || !bytes.Equal(res.LastBlockAppHash, []byte{9}) {
		t.Fatalf("Info after the handshake = %v, %v; want the last commit, height 9", res, err)
	}
	if last, _ := a.gov.recordedUpTo(); last != 9 {
		t.Fatalf("journal at %d after a later Info; want 9", last)
	}

	// A restart: the journal is ahead of geth (geth lost blocks 8 and 9):
	// geth's head.
	a.handshaken.Store(false)
	res, err = a.Info(ctx, &abci.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if res.LastBlockHeight != 7 || !bytes.Equal(res.LastBlockAppHash, governance.AppHash(h.Hash().Bytes(), s)) {
		t.Fatalf("Info = height %d hash %x; want 7 and the app hash of %s", res.LastBlockHeight, res.LastBlockAppHash, h.Hash())
	}
	if last, _ := a.gov.recordedUpTo(); last != 7 {
		t.Fatalf("journal at %d after Info; want truncated to 7", last)
	}

	// geth is ahead of the journal: the journal's height, with geth's
	// block at that height.
	a.gov.rewind(5, nil)
	a.handshaken.Store(false)
	res, err = a.Info(ctx, &abci.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	h5, _ := (&fakeEngine{head: h}).HeaderAt(ctx, 5)
	if res.LastBlockHeight != 5 || !bytes.Equal(res.LastBlockAppHash, governance.AppHash(h5.Hash().Bytes(), s)) || a.lastFinal().Hash != h5.Hash() {
		t.Fatalf("Info = height %d hash %x; want 5 and the app hash of %s", res.LastBlockHeight, res.LastBlockAppHash, h5.Hash())
	}
}

func TestPeerFilter(t *testing.T) {
	a, _ := testApp(t, &fakeEngine{})
	const self = "0000000000000000000000000000000000000000"
	const peer = "1111111111111111111111111111111111111111"
	const stranger = "2222222222222222222222222222222222222222"
	set, err := parsePeers([]string{peer + "@127.0.0.1:26656", self + "@127.0.0.1:26657"}, self)
	if err != nil {
		t.Fatal(err)
	}
	a.peers.Store(set)
	ctx := context.Background()
	for id, wantOK := range map[string]bool{peer: true, stranger: false, self: false} {
		res, _ := a.Query(ctx, &abci.QueryRequest{Path: "/p2p/filter/id/" + id})
		if res.IsOK() != wantOK {
			t.Errorf("filter %s: code %d, want ok=%v", id, res.Code, wantOK)
		}
	}
	if res, _ := a.Query(ctx, &abci.QueryRequest{Path: "/p2p/filter/addr/10.0.0.1:41234"}); !res.IsOK() {
		t.Errorf("address filter refused: %v", res)
	}
	if res, _ := a.Query(ctx, &abci.QueryRequest{Path: "/nope"}); res.IsOK() {
		t.Error("unknown query path answered OK")
	}
}

func TestParsePeers(t *testing.T) {
	const id = "1111111111111111111111111111111111111111"
	tests := []struct {
		addr string
		err  error
	}{
		{id + "@127.0.0.1:26656", nil},
		{"tcp://" + id + "@host.example:26656", nil},
		{"ABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCD@[::1]:1", nil},
		{"127.0.0.1:26656", ErrBadPeer},
		{"xyz@127.0.0.1:26656", ErrBadPeer},
		{id + "@127.0.0.1", ErrBadPeer},
		{id + "@:26656", ErrBadPeer},
		{id + "@127.0.0.1:0", ErrBadPeer},
		{id + "@127.0.0.1:70000", ErrBadPeer},
	}
	for _, tt := range tests {
		_, err := parsePeers([]string{tt.addr}, "")
		if !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
			t.Errorf("parsePeers(%q) = %v, want %v", tt.addr, err, tt.err)
		}
	}
}

// TestMetricsOnOneRegisterer: several nodes' metrics in one process never
// touch the global registry, and a node restarted on the same Registerer
// takes over its predecessor's collectors.
func TestMetricsOnOneRegisterer(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	a.peersRefused.Inc()
	b, err := newMetrics(reg)
	if err != nil {
		t.Fatalf("second registration on one registry: %v", err)
	}
	b.peersRefused.Inc()
	if got := promtestutil.ToFloat64(b.peersRefused); got != 2 {
		t.Fatalf("counter after restart = %v, want 2 (shared)", got)
	}
	if _, err := newMetrics(prometheus.NewRegistry()); err != nil {
		t.Fatalf("a second registry: %v", err)
	}
	n, err := reg.Gather()
	if err != nil || len(n) == 0 {
		t.Fatalf("gather: %d families, %v", len(n), err)
	}
}

// TestFinalizeSkipsKnownPayload: a block this geth validated in
// ProcessProposal is not sent again (geth would warn about it); when the
// fork choice update then fails, the import falls back to newPayload.
func TestFinalizeSkipsKnownPayload(t *testing.T) {
	for _, fcuFailsFirst := range []bool{false, true} {
		var newPayloads, fcus atomic.Int64
		eng := &fakeEngine{}
		eng.newPayload = func(d engine.ExecutableData) (engine.PayloadStatusV1, error) {
			newPayloads.Add(1)
			return valid(d)
		}
		eng.fcu = func(s engine.ForkchoiceStateV1, a *engine.PayloadAttributes) (engine.ForkChoiceResponse, error) {
			if fcus.Add(1) == 1 && fcuFailsFirst {
				return engine.ForkChoiceResponse{PayloadStatus: engine.PayloadStatusV1{Status: engine.SYNCING}}, nil
			}
			return validFCU(s, a)
		}
		a, _ := testApp(t, eng)
		a.setLastFinal(testParent)
		tx, _ := EncodePayload(goodPayload(time.Unix(1010, 0), nil))
		ctx := context.Background()
		if res, _ := a.ProcessProposal(ctx, &abci.ProcessProposalRequest{Height: 42, Time: time.Unix(1010, 0), Txs: [][]byte{tx}}); res.Status != abci.PROCESS_PROPOSAL_STATUS_ACCEPT {
			t.Fatal("proposal refused")
		}
		if _, err := a.FinalizeBlock(ctx, &abci.FinalizeBlockRequest{Height: 42, Time: time.Unix(1010, 0), Txs: [][]byte{tx}}); err != nil {
			t.Fatal(err)
		}
		want := int64(1)
		if fcuFailsFirst {
			want = 2
		}
		if newPayloads.Load() != want {
			t.Errorf("fcu fails first = %v: %d newPayload calls, want %d", fcuFailsFirst, newPayloads.Load(), want)
		}
	}
}
