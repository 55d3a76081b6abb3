package consortiuminit

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/ethereum/go-ethereum/common"
)

// The layout of a Clique genesis extraData (EIP-225): vanity, the signer
// addresses, then room for a seal, which the genesis block leaves zero.
const (
	extraVanity = 32
	extraSeal   = 65
)

// ExtraData returns the genesis extraData that makes signers the initial
// Clique signer set: 32 zero bytes, the addresses in ascending byte order,
// then 65 zero bytes. The order is the one Clique itself uses for checkpoint
// headers, so the same set always gives the same bytes (and genesis hash)
// whatever order the caller lists it in. Duplicates are dropped: a signer is
// a set member, and listing one twice would only make the bytes differ.
func ExtraData(signers []common.Address) []byte {
	sorted := slices.Clone(signers)
	slices.SortFunc(sorted, func(a, b common.Address) int { return bytes.Compare(a[:], b[:]) })
	sorted = slices.Compact(sorted)

	extra := make([]byte, extraVanity+len(sorted)*common.AddressLength+extraSeal)
	for i, s := range sorted {
		copy(extra[extraVanity+i*common.AddressLength:], s[:])
	}
	return extra
}

// ParseExtraData returns the signer addresses in a Clique checkpoint
// extraData, in the order they appear. It checks only the layout: vanity and
// seal may hold anything, as they do in sealed checkpoint blocks.
func ParseExtraData(extra []byte) ([]common.Address, error) {
	if len(extra) < extraVanity+extraSeal {
		return nil, fmt.Errorf("%w (got %d bytes, want at least %d)", ErrBadExtraData, len(extra), extraVanity+extraSeal)
	}
	body := extra[extraVanity : len(extra)-extraSeal]
	if len(body)%common.AddressLength != 0 {
		return nil, fmt.Errorf("%w (%d signer bytes is not a multiple of %d)", ErrBadExtraData, len(body), common.AddressLength)
	}
	signers := make([]common.Address, len(body)/common.AddressLength)
	for i := range signers {
		copy(signers[i][:], body[i*common.AddressLength:])
	}
	return signers, nil
}
