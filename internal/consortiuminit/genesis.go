package consortiuminit

import (
	"encoding/hex"
	"encoding/json"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// The genesis is written from these types rather than go-ethereum's
// core.Genesis: the chain runs on geth v1.13.15 (the last that seals Clique),
// and v1.17's types would add fields for forks that Clique rejects. The shape
// is that of testdata/genesis-clique-geth1.13.json, which geth v1.13.15 is
// known to accept.
type genesisFile struct {
	Config     chainConfig             `json:"config"`
	Difficulty *hexutil.Big            `json:"difficulty"`
	GasLimit   hexutil.Uint64          `json:"gasLimit"`
	ExtraData  hexutil.Bytes           `json:"extraData"`
	Alloc      map[string]allocAccount `json:"alloc"`
}

// chainConfig enables every fork up to London at block 0 and nothing later:
// Clique refuses Shanghai, and without terminalTotalDifficulty geth v1.13
// treats the chain as proof of authority for good.
type chainConfig struct {
	ChainID             uint64       `json:"chainId"`
	HomesteadBlock      uint64       `json:"homesteadBlock"`
	EIP150Block         uint64       `json:"eip150Block"`
	EIP155Block         uint64       `json:"eip155Block"`
	EIP158Block         uint64       `json:"eip158Block"`
	ByzantiumBlock      uint64       `json:"byzantiumBlock"`
	ConstantinopleBlock uint64       `json:"constantinopleBlock"`
	PetersburgBlock     uint64       `json:"petersburgBlock"`
	IstanbulBlock       uint64       `json:"istanbulBlock"`
	BerlinBlock         uint64       `json:"berlinBlock"`
	LondonBlock         uint64       `json:"londonBlock"`
	Clique              cliqueConfig `json:"clique"`
}

type cliqueConfig struct {
	Period uint64 `json:"period"`
	Epoch  uint64 `json:"epoch"`
}

type allocAccount struct {
	Balance *hexutil.Big `json:"balance"`
}

// genesisJSON renders the Clique genesis: signers in extraData and funded,
// along with the extra accounts in fund, each holding wei.
func genesisJSON(chainID, period, gasLimit uint64, signers, fund []common.Address, wei *big.Int) ([]byte, error) {
	alloc := make(map[string]allocAccount, len(signers)+len(fund))
	for _, a := range append(append([]common.Address{}, signers...), fund...) {
		// Lower-case hex without 0x, as in the reference genesis; encoding/json
		// sorts map keys, so the file is stable for a given input.
		alloc[hex.EncodeToString(a[:])] = allocAccount{Balance: (*hexutil.Big)(new(big.Int).Set(wei))}
	}
	g := genesisFile{
		Config: chainConfig{
			ChainID: chainID,
			Clique:  cliqueConfig{Period: period, Epoch: Epoch},
		},
		// Clique's in-turn difficulty is 2, out-of-turn 1; the genesis is
		// sealed by no one and uses 1 by convention.
		Difficulty: (*hexutil.Big)(big.NewInt(1)),
		GasLimit:   hexutil.Uint64(gasLimit),
		ExtraData:  ExtraData(signers),
		Alloc:      alloc,
	}
	out, err := json.MarshalIndent(g, "", " ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
