package consortiuminit

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

var (
	// The two signers of testdata/genesis-clique-geth1.13.json.
	factsA = common.HexToAddress("0x73593f35845728d2a4c3dac6ef59cc5785c563fa")
	factsB = common.HexToAddress("0xf9e308a627dff567d0f6888fdca29d102ff557f4")
	low    = common.HexToAddress("0x0000000000000000000000000000000000000001")
	high   = common.HexToAddress("0xffffffffffffffffffffffffffffffffffffffff")
)

const factsExtra = "0x0000000000000000000000000000000000000000000000000000000000000000" +
	"73593f35845728d2a4c3dac6ef59cc5785c563fa" + "f9e308a627dff567d0f6888fdca29d102ff557f4" +
	"0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"

func zeros(n int) string { return strings.Repeat("00", n) }

func TestExtraData(t *testing.T) {
	for _, tc := range []struct {
		name    string
		signers []common.Address
		want    string
	}{
		{"none", nil, "0x" + zeros(32+65)},
		{"one", []common.Address{factsA}, "0x" + zeros(32) + factsA.Hex()[2:] + zeros(65)},
		{"facts genesis", []common.Address{factsA, factsB}, factsExtra},
		{"sorted whatever the input order", []common.Address{factsB, factsA}, factsExtra},
		{"duplicates dropped", []common.Address{factsB, factsA, factsB}, factsExtra},
		{"byte order, not checksum order", []common.Address{high, low, factsA},
			"0x" + zeros(32) + "0000000000000000000000000000000000000001" +
				"73593f35845728d2a4c3dac6ef59cc5785c563fa" + "ffffffffffffffffffffffffffffffffffffffff" + zeros(65)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.signers)
			got := hexutil.Encode(ExtraData(tc.signers))
			if !strings.EqualFold(got, tc.want) {
				t.Errorf("ExtraData = %s\nwant        %s", got, tc.want)
			}
			if !slices.Equal(in, tc.signers) {
				t.Errorf("ExtraData reordered its argument: %v", tc.signers)
			}
		})
	}
}

func TestParseExtraData(t *testing.T) {
	sealed := make([]byte, 32+20+65) // vanity and seal hold data in sealed checkpoints
	for i := range sealed {
		sealed[i] = 0xee
	}
	copy(sealed[32:], factsB[:])

	for _, tc := range []struct {
		name  string
		extra string
		want  []common.Address
		err   error
	}{
		{"facts genesis", factsExtra, []common.Address{factsA, factsB}, nil},
		{"no signers", "0x" + zeros(97), []common.Address{}, nil},
		{"order kept", "0x" + zeros(32) + factsB.Hex()[2:] + factsA.Hex()[2:] + zeros(65), []common.Address{factsB, factsA}, nil},
		{"sealed checkpoint", hexutil.Encode(sealed), []common.Address{factsB}, nil},
		{"empty", "0x", nil, ErrBadExtraData},
		{"vanity only", "0x" + zeros(32), nil, ErrBadExtraData},
		{"one byte short", "0x" + zeros(96), nil, ErrBadExtraData},
		{"partial address", "0x" + zeros(32+19+65), nil, ErrBadExtraData},
		{"one extra byte", "0x" + zeros(32+20+1+65), nil, ErrBadExtraData},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseExtraData(hexutil.MustDecode(tc.extra))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.err == nil && !slices.Equal(got, tc.want) {
				t.Errorf("signers = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestExtraDataRoundTrip(t *testing.T) {
	in := []common.Address{high, factsB, low, factsA}
	got, err := ParseExtraData(ExtraData(in))
	if err != nil {
		t.Fatal(err)
	}
	want := slices.SortedFunc(slices.Values(in), func(a, b common.Address) int { return bytes.Compare(a[:], b[:]) })
	if !slices.Equal(got, want) {
		t.Errorf("round trip = %v, want %v", got, want)
	}
}
