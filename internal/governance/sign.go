package governance

import (
	"fmt"
	"os"

	"github.com/cometbft/cometbft/crypto"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/privval"
)

// LoadKeyFile reads a member's validator key from a CometBFT FilePV key
// file (priv_validator_key.json). It is privval.LoadFilePV's parsing
// without its os.Exit on a bad file (only main exits here) and without
// the sign state, which governance signatures neither need nor may touch:
// the running validator owns that file.
func LoadKeyFile(path string) (ed25519.PrivKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	return ParseKeyFile(b)
}

// ParseKeyFile is LoadKeyFile on the file's bytes.
func ParseKeyFile(b []byte) (ed25519.PrivKey, error) {
	var k privval.FilePVKey
	if err := cmtjson.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyFile, err)
	}
	priv, ok := k.PrivKey.(ed25519.PrivKey)
	if !ok || len(priv) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: not an ed25519 key", ErrKeyFile)
	}
	return priv, nil
}

// SignProposal is the transaction that opens p with key's signature (the
// proposer's vote). The CLI sets p.Anchor to the chain's latest height.
func SignProposal(key crypto.PrivKey, p Proposal) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return sign(key, &Tx{Proposal: &p}, p.ChainID, p.ID())
}

// SignVote is the transaction that votes for proposal id.
func SignVote(key crypto.PrivKey, chainID string, id ID) ([]byte, error) {
	if err := checkChainID(chainID); err != nil {
		return nil, err
	}
	return sign(key, &Tx{Vote: &Vote{ChainID: chainID, ProposalID: id}}, chainID, id)
}

func sign(key crypto.PrivKey, t *Tx, chainID string, id ID) ([]byte, error) {
	pub, ok := key.PubKey().(ed25519.PubKey)
	if !ok {
		return nil, fmt.Errorf("%w: validator keys are ed25519, not %s", ErrBadKey, key.Type())
	}
	sig, err := key.Sign(SignBytes(chainID, id))
	if err != nil {
		return nil, err
	}
	t.Signer, t.Signature = pub, sig
	return EncodeTx(t)
}
