package gethtest

import (
	_ "embed"
	"fmt"
)

// genesisPoS starts a proof-of-stake chain (all forks at 0 up to Prague) that
// geth >= 1.14 accepts; blocks need an Engine API driver.
//
//go:embed testdata/genesis-pos-geth1.17.json
var genesisPoS []byte

// genesisClique starts a Clique chain (London level) that geth 1.13 seals
// without a consensus client.
//
//go:embed testdata/genesis-clique-geth1.13.json
var genesisClique []byte

// DefaultGenesis returns the genesis JSON a node of version starts from when
// Config.Genesis is empty: Clique for geth before 1.14 (which cannot run a
// merged chain without a beacon client), proof of stake from 1.14 on (which
// runs nothing else). The slice is a copy.
func DefaultGenesis(version string) ([]byte, error) {
	major, minor, _, err := parseVersion(version)
	if err != nil {
		return nil, err
	}
	if major != 1 {
		return nil, fmt.Errorf("gethtest: no default genesis for geth %s", version)
	}
	src := genesisPoS
	if minor < 14 {
		src = genesisClique
	}
	return append([]byte(nil), src...), nil
}
