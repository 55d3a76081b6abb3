package consortiuminit

import (
	"crypto/rand"
	"path"

	cmtcfg "github.com/cometbft/cometbft/config"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// The files of a CometBFT home directory, relative to it: CometBFT's own
// defaults (config.DefaultConfig), so `cfg.SetRoot(home)` finds them all.
var (
	CometNodeKeyFile     = path.Join(cmtcfg.DefaultConfigDir, cmtcfg.DefaultNodeKeyName)
	CometGenesisCopy     = path.Join(cmtcfg.DefaultConfigDir, cmtcfg.DefaultGenesisJSONName)
	CometPrivValKeyFile  = path.Join(cmtcfg.DefaultConfigDir, cmtcfg.DefaultPrivValKeyName)
	CometPrivValStateDir = cmtcfg.DefaultDataDir
	CometPrivValState    = path.Join(cmtcfg.DefaultDataDir, cmtcfg.DefaultPrivValStateName)
)

// runsConsensus reports whether a node of role runs geth beside a consensus
// process in a BFT consortium. Bootnodes run `consortium bootnode`: neither.
func runsConsensus(role Role) bool { return role != RoleBootnode }

// generateBFTNode writes what a BFT node needs besides its devp2p key: the
// Engine API secret it shares with its geth, and its CometBFT home, all but
// config/genesis.json (written by writeCometGenesis once the validator set
// is known). For the validator it also writes the member's validator key and
// returns its entry for the manifest.
func generateBFTNode(n *Node, w *writer) (*Validator, error) {
	var secret [32]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return nil, err
	}
	n.JWTSecret = path.Join(n.Dir, jwtSecretFile)
	// "0x" and 64 hex digits, no newline: what geth writes when it makes a
	// secret itself (node.ObtainJWTSecret), and reads from --authrpc.jwtsecret.
	if err := w.file(n.JWTSecret, []byte(hexutil.Encode(secret[:])), secretMode); err != nil {
		return nil, err
	}

	n.CometHome = path.Join(n.Dir, cometHomeDir)
	for _, d := range []string{n.CometHome, path.Join(n.CometHome, cmtcfg.DefaultConfigDir), path.Join(n.CometHome, CometPrivValStateDir)} {
		if err := w.mkdir(d); err != nil {
			return nil, err
		}
	}
	// The node key is CometBFT's P2P identity (ed25519), apart from geth's
	// devp2p key (secp256k1): each peer layer checks its own.
	nodeKey := p2p.NodeKey{PrivKey: ed25519.GenPrivKey()}
	n.CometNodeID = string(nodeKey.ID())
	b, err := cmtjson.Marshal(nodeKey) // as NodeKey.SaveAs writes it
	if err != nil {
		return nil, err
	}
	if err := w.file(path.Join(n.CometHome, CometNodeKeyFile), b, secretMode); err != nil {
		return nil, err
	}
	if n.Role != RoleValidator {
		// A full node needs no key of the set; the consensus process gives
		// CometBFT a throwaway one, as `cometbft init` would.
		return nil, nil
	}

	keyFile, stateFile := path.Join(n.CometHome, CometPrivValKeyFile), path.Join(n.CometHome, CometPrivValState)
	pv, err := privval.GenFilePV(w.abs(keyFile), w.abs(stateFile), nil) // ed25519, in memory only
	if err != nil {
		return nil, err
	}
	// Rendered as FilePVKey.Save and FilePVLastSignState.Save would, but
	// written by our writer: those panic on an error and do not refuse an
	// existing file, and a validator key must never be overwritten.
	for _, f := range []struct {
		rel string
		v   any
	}{{keyFile, pv.Key}, {stateFile, pv.LastSignState}} {
		b, err := cmtjson.MarshalIndent(f.v, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := w.file(f.rel, b, secretMode); err != nil {
			return nil, err
		}
	}
	pub := pv.Key.PubKey.(ed25519.PubKey)
	return &Validator{Node: n.Name, Address: pv.Key.Address, PubKey: []byte(pub), Power: ValidatorPower}, nil
}

// writeBFT writes the two genesis files of a BFT consortium, funding each
// member's fee recipient and the extra prefunded accounts, and copies the
// CometBFT genesis into every node's CometBFT home.
func writeBFT(cfg Config, m *Manifest, w *writer) error {
	fund := make([]common.Address, 0, len(m.Members)+len(cfg.Prefund))
	for _, mem := range m.Members {
		fund = append(fund, mem.FeeRecipient.Address)
	}
	fund = append(fund, cfg.Prefund...)
	g := bftGenesis(cfg.ChainID, cfg.GasLimit, fund, cfg.PrefundWei)
	gj, err := gethGenesisJSON(g)
	if err != nil {
		return err
	}
	if err := w.file(GenesisFile, gj, publicMode); err != nil {
		return err
	}
	hash := g.ToBlock().Hash()
	m.GenesisHash = &hash

	doc, err := cometGenesis(m.CometChainID, cfg.GenesisTime, hash, m.Members)
	if err != nil {
		return err
	}
	cj, err := cometGenesisJSON(doc)
	if err != nil {
		return err
	}
	if err := w.file(CometGenesisFile, cj, publicMode); err != nil {
		return err
	}
	for _, mem := range m.Members {
		for _, n := range mem.Nodes {
			if n.CometHome == "" {
				continue
			}
			if err := w.file(path.Join(n.CometHome, CometGenesisCopy), cj, publicMode); err != nil {
				return err
			}
		}
	}
	return nil
}
