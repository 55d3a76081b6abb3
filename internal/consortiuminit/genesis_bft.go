package consortiuminit

import (
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

// The two genesis files of a BFT consortium: geth's (the execution chain,
// from go-ethereum's own types) and CometBFT's (the validator set, from
// CometBFT's), both for the versions the project runs: geth v1.17.10 and
// CometBFT v1.0.1.

const (
	// ValidatorPower is every validator's voting power: one member, one
	// vote, so more than two thirds of the members must sign each block.
	ValidatorPower = 1
	// CometMaxBlockBytes bounds a CometBFT block, which carries one geth
	// payload. Since Prague (EIP-7623's floor of 10 gas per zero byte of
	// calldata) a payload of geth's default 60M gas ceiling holds at most
	// about 6 MB of calldata, 12 MB as hex; 16 MiB keeps a full block of
	// either encoding, well under CometBFT's 100 MB hard limit. CometBFT's
	// default, 4 MiB, would refuse such a block.
	CometMaxBlockBytes = 16 << 20
)

// CometChainID is the CometBFT chain id of the consortium whose Ethereum
// chain id is chainID: derived, so the two never disagree, and prefixed, so
// a vote signed for it cannot count on another CometBFT chain numbered alike.
func CometChainID(chainID uint64) string { return fmt.Sprintf("consortium-%d", chainID) }

// bftGenesis is geth's genesis for the BFT chain: proof of stake from block 0
// (terminalTotalDifficulty 0: geth >= 1.14 runs nothing else and takes its
// blocks from the consensus process over the Engine API), every fork up to
// Prague at 0 with its blob schedule, and the system contracts those forks
// call into (without them geth cannot build a Prague block). The shape is
// that of testdata/genesis-pos-geth1.17.json, which geth v1.17.10 is known
// to init, start, peer and fill with transactions. fund are the accounts
// given wei each.
func bftGenesis(chainID, gasLimit uint64, fund []common.Address, wei *big.Int) *core.Genesis {
	zero := func() *big.Int { return new(big.Int) }
	at0 := func() *uint64 { return new(uint64) }
	cfg := &params.ChainConfig{
		ChainID:                 new(big.Int).SetUint64(chainID),
		HomesteadBlock:          zero(),
		EIP150Block:             zero(),
		EIP155Block:             zero(),
		EIP158Block:             zero(),
		ByzantiumBlock:          zero(),
		ConstantinopleBlock:     zero(),
		PetersburgBlock:         zero(),
		IstanbulBlock:           zero(),
		MuirGlacierBlock:        zero(),
		BerlinBlock:             zero(),
		LondonBlock:             zero(),
		ArrowGlacierBlock:       zero(),
		GrayGlacierBlock:        zero(),
		ShanghaiTime:            at0(),
		CancunTime:              at0(),
		PragueTime:              at0(),
		TerminalTotalDifficulty: zero(),
		BlobScheduleConfig: &params.BlobScheduleConfig{
			Cancun: params.DefaultCancunBlobConfig,
			Prague: params.DefaultPragueBlobConfig,
		},
	}
	alloc := core.SystemContractAllocs()
	for _, a := range fund {
		alloc[a] = types.Account{Balance: new(big.Int).Set(wei)}
	}
	return &core.Genesis{
		Config: cfg,
		// Timestamp 0, as in the reference: the first payload's timestamp
		// (from CometBFT's first block, whose time is the CometBFT genesis
		// time) must be later than its parent's.
		GasLimit:   gasLimit,
		BaseFee:    big.NewInt(params.InitialBaseFee),
		Difficulty: zero(),
		Alloc:      alloc,
	}
}

// gethGenesisJSON renders g as geth init reads it; encoding/json sorts the
// alloc, so the file is stable for a given input.
func gethGenesisJSON(g *core.Genesis) ([]byte, error) {
	out, err := json.MarshalIndent(g, "", " ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// cometGenesis is the CometBFT genesis: the validator set, one ed25519 key
// of ValidatorPower per member, in the members' order. appHash is geth's
// genesis block hash: the state CometBFT starts from, so a consensus process
// can tell at InitChain that its geth was initialised from the same genesis.
func cometGenesis(chainID string, at time.Time, appHash common.Hash, members []Member) (*cmttypes.GenesisDoc, error) {
	p := cmttypes.DefaultConsensusParams()
	p.Block.MaxBytes = CometMaxBlockBytes
	// CometBFT's gas is the ABCI application's to define, and ours meters
	// nothing: geth enforces the block gas limit. -1 means no limit.
	p.Block.MaxGas = -1
	doc := &cmttypes.GenesisDoc{
		GenesisTime:     at,
		ChainID:         chainID,
		InitialHeight:   1,
		ConsensusParams: p,
		AppHash:         appHash.Bytes(),
	}
	for _, m := range members {
		if m.Validator == nil {
			continue
		}
		pub := ed25519.PubKey(m.Validator.PubKey)
		doc.Validators = append(doc.Validators, cmttypes.GenesisValidator{
			Address: pub.Address(),
			PubKey:  pub,
			Power:   m.Validator.Power,
			Name:    m.Name,
		})
	}
	// What every CometBFT node runs on the file when it starts, so a doc it
	// would refuse is refused here, before anything is written.
	if err := doc.ValidateAndComplete(); err != nil {
		return nil, fmt.Errorf("CometBFT genesis: %w", err)
	}
	return doc, nil
}

// cometGenesisJSON renders doc exactly as CometBFT's GenesisDoc.SaveAs does.
func cometGenesisJSON(doc *cmttypes.GenesisDoc) ([]byte, error) {
	return cmtjson.MarshalIndent(doc, "", "  ")
}
