//go:build linux

package consortiuminit

import (
	"context"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/gethtest"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"
)

// TestGeth117RunsBFTGenesis inits geth v1.17.10 with the genesis a BFT Run
// writes, starts it with a node's devp2p key and JWT secret exactly as a
// deployment would, and then does over the Engine API what the consensus
// process will: build one block on the genesis with the member's fee
// recipient, have geth call it VALID, and make it the head. That proves the
// genesis holds what a Prague block needs (the system contracts), the JWT
// file is one geth reads, and the manifest's genesis hash is geth's.
func TestGeth117RunsBFTGenesis(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs geth; skipped with -short")
	}
	res, err := Run(Config{
		Members:        []string{"acme", "globex", "initech"},
		Out:            filepath.Join(t.TempDir(), "net"),
		NodesPerMember: Roles{Validators: 1, Tx: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	member := res.Members[1]
	n := member.Nodes[0] // globex's validator
	genesis, err := os.ReadFile(res.Path(res.Genesis))
	if err != nil {
		t.Fatal(err)
	}
	key, err := crypto.LoadECDSA(res.Path(n.Nodekey))
	if err != nil {
		t.Fatal(err)
	}
	g := gethtest.Start(t, gethtest.Config{
		Version:   gethtest.V117,
		Genesis:   genesis,
		NodeKey:   key,
		ExtraArgs: []string{"--authrpc.jwtsecret", res.Path(n.JWTSecret)},
	})
	if g.ID().String() != n.ID {
		t.Errorf("geth --nodekey %s runs as %s, manifest says %s", n.Nodekey, g.ID(), n.ID)
	}

	var chainID hexutil.Uint64
	if err := g.Call(&chainID, "eth_chainId"); err != nil || uint64(chainID) != res.ChainID {
		t.Errorf("eth_chainId = %d, %v; want %d", chainID, err, res.ChainID)
	}
	var block0 struct{ Hash common.Hash }
	if err := g.Call(&block0, "eth_getBlockByNumber", "0x0", false); err != nil {
		t.Fatal(err)
	}
	if block0.Hash != *res.GenesisHash {
		t.Errorf("geth's genesis block is %s, the manifest says %s", block0.Hash, res.GenesisHash)
	}
	for _, m := range res.Members {
		var bal hexutil.Big
		if err := g.Call(&bal, "eth_getBalance", m.FeeRecipient.Address, "latest"); err != nil {
			t.Fatal(err)
		}
		if (*big.Int)(&bal).Cmp(DefaultPrefundWei()) != 0 {
			t.Errorf("%s's fee recipient holds %s wei, want %s", m.Name, (*big.Int)(&bal), DefaultPrefundWei())
		}
	}

	// The Engine API, authenticated with the node's own secret file.
	secret, err := node.ObtainJWTSecret(res.Path(n.JWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	eng, err := rpc.DialOptions(ctx, "http://127.0.0.1:"+strconv.Itoa(g.AuthRPCPort()), rpc.WithHTTPAuth(node.NewJWTAuth([32]byte(secret))))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()

	head := engine.ForkchoiceStateV1{HeadBlockHash: block0.Hash, SafeBlockHash: block0.Hash, FinalizedBlockHash: block0.Hash}
	beaconRoot := common.Hash{0xbe}
	attrs := &engine.PayloadAttributes{
		Timestamp:             uint64(time.Now().Unix()),
		Random:                common.Hash{0x5a},
		SuggestedFeeRecipient: member.FeeRecipient.Address,
		Withdrawals:           []*types.Withdrawal{},
		BeaconRoot:            &beaconRoot,
	}
	var fcu engine.ForkChoiceResponse
	if err := eng.CallContext(ctx, &fcu, "engine_forkchoiceUpdatedV3", head, attrs); err != nil {
		t.Fatalf("engine_forkchoiceUpdatedV3 with the node's JWT secret: %v", err)
	}
	if fcu.PayloadStatus.Status != engine.VALID || fcu.PayloadID == nil {
		t.Fatalf("forkchoiceUpdated on the genesis: %+v", fcu)
	}
	var env engine.ExecutionPayloadEnvelope
	if err := eng.CallContext(ctx, &env, "engine_getPayloadV4", fcu.PayloadID); err != nil {
		t.Fatal(err)
	}
	p := env.ExecutionPayload
	if p.Number != 1 || p.ParentHash != block0.Hash || p.FeeRecipient != member.FeeRecipient.Address {
		t.Errorf("payload %d on %s for %s, want 1 on the genesis for %s", p.Number, p.ParentHash, p.FeeRecipient, member.FeeRecipient.Address)
	}
	requests := make([]hexutil.Bytes, len(env.Requests))
	for i, r := range env.Requests {
		requests[i] = r
	}
	var status engine.PayloadStatusV1
	if err := eng.CallContext(ctx, &status, "engine_newPayloadV4", p, []common.Hash{}, &beaconRoot, requests); err != nil {
		t.Fatal(err)
	}
	if status.Status != engine.VALID {
		t.Fatalf("newPayload: %+v", status)
	}
	head = engine.ForkchoiceStateV1{HeadBlockHash: p.BlockHash, SafeBlockHash: p.BlockHash, FinalizedBlockHash: p.BlockHash}
	if err := eng.CallContext(ctx, &fcu, "engine_forkchoiceUpdatedV3", head, nil); err != nil || fcu.PayloadStatus.Status != engine.VALID {
		t.Fatalf("forkchoiceUpdated to block 1: %+v, %v", fcu, err)
	}
	var block1 struct {
		Hash  common.Hash
		Miner common.Address
	}
	if err := g.Call(&block1, "eth_getBlockByNumber", "finalized", false); err != nil {
		t.Fatal(err)
	}
	if block1.Hash != p.BlockHash || block1.Miner != member.FeeRecipient.Address {
		t.Errorf("finalized block %s by %s, want %s by %s", block1.Hash, block1.Miner, p.BlockHash, member.FeeRecipient.Address)
	}
}
