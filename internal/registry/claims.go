package registry

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/consortium/consortium/internal/api"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rlp"
)

// A node's status is what its agent reports: the registrar cannot see the
// chain. What can be checked is checked, and the rest is marked as the
// node's own word (SealChecked, CoinbaseChecked false):
//
//   - head and head_signer, with head_header: the header must be block
//     head, and its Clique seal must recover to head_signer. That proves
//     the address sealed a block of that number (a header can be copied,
//     so it proves nothing about who runs the node).
//   - coinbase, with coinbase_sig: the coinbase key's signature (EIP-191,
//     as geth's eth_sign makes it) of "consortium node <node ID>" proves
//     that whoever runs the node holds the coinbase key. A coinbase proven
//     by one member's node is refused in another member's status.
//   - head: never more than MaxHeadLead blocks beyond the highest head any
//     other member's live node reports (without other members' reports
//     there is nothing to compare with).

// MaxHeadLead is how far beyond every other member's nodes a head may be.
// Reports lag a renewal (seconds), and a node never legitimately leads
// every other member by more than a few blocks; 10,000 blocks are hours.
const MaxHeadLead = 10000

// checkProofs verifies the proofs a status carries and sets the flags
// they earn, dropping the proofs themselves (the flags are what is kept).
// It needs nothing but the status and the node's ID.
func checkProofs(st *Status, id string) error {
	if st.SealChecked || st.CoinbaseChecked {
		return fmt.Errorf("%w: status.seal_checked and status.coinbase_checked are set by the registrar", ErrInvalid)
	}
	if st.HeadHeader != "" {
		signer, number, err := cliqueSigner(st.HeadHeader)
		if err != nil {
			return fmt.Errorf("%w: status.head_header: %v", ErrInvalid, err)
		}
		if number != st.Head {
			return fmt.Errorf("%w: status.head_header is block %d, not the head %d", ErrInvalid, number, st.Head)
		}
		if st.HeadSigner == "" {
			st.HeadSigner = strings.ToLower(signer.Hex())
		} else if !strings.EqualFold(st.HeadSigner, signer.Hex()) {
			return fmt.Errorf("%w: status.head_signer is not the signer of the head_header's seal", ErrInvalid)
		}
		st.SealChecked, st.HeadHeader = true, ""
	}
	if st.CoinbaseSig != "" {
		if st.Coinbase == "" {
			return fmt.Errorf("%w: status.coinbase_sig without a coinbase", ErrInvalid)
		}
		sig, err := decodeHex(st.CoinbaseSig, crypto.SignatureLength*2+2)
		if err != nil || len(sig) != crypto.SignatureLength {
			return fmt.Errorf("%w: status.coinbase_sig must be a 0x-prefixed 65-byte signature", ErrInvalid)
		}
		if sig[64] >= 27 {
			sig[64] -= 27 // eth_sign's V
		}
		pub, err := crypto.SigToPub(accounts.TextHash(api.CoinbaseMessage(id)), sig)
		if err != nil || !strings.EqualFold(crypto.PubkeyToAddress(*pub).Hex(), st.Coinbase) {
			return fmt.Errorf("%w: status.coinbase_sig is not the coinbase's signature of %q", ErrInvalid, api.CoinbaseMessage(id))
		}
		st.CoinbaseChecked, st.CoinbaseSig = true, ""
	}
	return nil
}

func decodeHex(s string, maxLen int) ([]byte, error) {
	if len(s) > maxLen || !strings.HasPrefix(s, "0x") {
		return nil, fmt.Errorf("not 0x-prefixed hex of at most %d characters", maxLen)
	}
	return hex.DecodeString(s[2:])
}

// cliqueSigner decodes a header (RLP, 0x-hex) and recovers the signer of
// its Clique seal (the last 65 bytes of its extra data).
func cliqueSigner(text string) (common.Address, uint64, error) {
	b, err := decodeHex(text, api.MaxHeaderHex)
	if err != nil {
		return common.Address{}, 0, err
	}
	var h types.Header
	if err := rlp.DecodeBytes(b, &h); err != nil {
		return common.Address{}, 0, fmt.Errorf("not an RLP block header")
	}
	if h.Number == nil || !h.Number.IsUint64() {
		return common.Address{}, 0, fmt.Errorf("no block number")
	}
	if len(h.Extra) < crypto.SignatureLength {
		return common.Address{}, 0, fmt.Errorf("no Clique seal in the extra data")
	}
	if h.WithdrawalsHash != nil || h.ExcessBlobGas != nil || h.BlobGasUsed != nil || h.ParentBeaconRoot != nil || h.RequestsHash != nil || h.SlotNumber != nil {
		return common.Address{}, 0, fmt.Errorf("not a Clique header")
	}
	pub, err := crypto.Ecrecover(sealHash(&h), h.Extra[len(h.Extra)-crypto.SignatureLength:])
	if err != nil {
		return common.Address{}, 0, fmt.Errorf("the seal does not recover a signer")
	}
	var signer common.Address
	copy(signer[:], crypto.Keccak256(pub[1:])[12:])
	return signer, h.Number.Uint64(), nil
}

// sealHash is Clique's: the Keccak-256 of the header's RLP without the seal
// (go-ethereum's clique.SealHash, which panics on the headers refused above).
func sealHash(h *types.Header) []byte {
	enc := []any{
		h.ParentHash, h.UncleHash, h.Coinbase, h.Root, h.TxHash, h.ReceiptHash, h.Bloom,
		h.Difficulty, h.Number, h.GasLimit, h.GasUsed, h.Time,
		h.Extra[:len(h.Extra)-crypto.SignatureLength], h.MixDigest, h.Nonce,
	}
	if h.BaseFee != nil {
		enc = append(enc, h.BaseFee)
	}
	var buf bytes.Buffer
	rlp.Encode(&buf, enc)
	return crypto.Keccak256(buf.Bytes())
}

func claimErrCoinbase(coinbase string) error {
	return fmt.Errorf("%w: status.coinbase %s is another member's (proven by its signature)", ErrInvalid, coinbase)
}

func claimErrHead(head, maxHead uint64) error {
	return fmt.Errorf("%w: status.head %d is more than %d blocks beyond every other member's nodes (highest %d)", ErrInvalid, head, MaxHeadLead, maxHead)
}
