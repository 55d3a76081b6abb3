package devnet

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

func TestHashBook(t *testing.T) {
	h1, h2, h3 := common.Hash{1}, common.Hash{2}, common.Hash{3}
	type obs struct {
		height uint64
		hash   common.Hash
		node   string
	}
	for _, tc := range []struct {
		name  string
		obs   []obs
		alarm []string // "height first-node node" per alarm, in order
	}{
		{"agreeing nodes", []obs{{1, h1, "a"}, {1, h1, "b"}, {2, h2, "a"}, {2, h2, "c"}}, nil},
		{"a differing node", []obs{{5, h1, "a"}, {5, h1, "b"}, {5, h2, "c"}}, []string{"5 a c"}},
		{"one alarm per height", []obs{{5, h1, "a"}, {5, h2, "b"}, {5, h3, "c"}, {5, h2, "d"}}, []string{"5 a b"}},
		{"each height on its own", []obs{{5, h1, "a"}, {6, h1, "a"}, {5, h2, "b"}, {6, h2, "b"}}, []string{"5 a b", "6 a b"}},
		{"no hash is no sighting", []obs{{5, common.Hash{}, "a"}, {5, h1, "b"}, {5, h1, "c"}}, nil},
		{"heights below the window are forgotten", []obs{{1, h1, "a"}, {1 + hashWindow, h2, "a"}, {1, h2, "b"}}, nil},
		{"heights in the window are kept", []obs{{2, h1, "a"}, {1 + hashWindow, h2, "a"}, {2, h2, "b"}}, []string{"2 a b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newHashBook()
			var got []string
			for _, o := range tc.obs {
				if first, differs := b.observe(o.height, o.hash, o.node); differs {
					got = append(got, strconv.FormatUint(o.height, 10)+" "+first.node+" "+o.node)
				}
			}
			if strings.Join(got, ";") != strings.Join(tc.alarm, ";") {
				t.Errorf("alarms %q, want %q", got, tc.alarm)
			}
		})
	}
}

func TestBlockGap(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	decided := map[uint64]time.Time{4: t0, 5: t0.Add(1030 * time.Millisecond)}
	for _, tc := range []struct {
		name           string
		n              uint64
		prevEL, thisEL uint64
		want           time.Duration
	}{
		{"both decided here", 5, 100, 101, 1030 * time.Millisecond},
		{"only one decided here: the EL seconds", 6, 101, 103, 2 * time.Second},
		{"no previous block", 7, 0, 103, -1},
		{"time going back is unknown", 8, 105, 103, -1},
	} {
		if got := blockGap(decided, tc.n, tc.prevEL, tc.thisEL); got != tc.want {
			t.Errorf("%s: blockGap = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestBFTLines(t *testing.T) {
	hash := common.HexToHash("0xde1c3377b419aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
	for _, tc := range []struct {
		got, want string
	}{
		{bftBlockLine(7, "b", "b/validator-1", 1020*time.Millisecond, 2, hash), "block 7     proposed by b      (b/validator-1)  + 1.02s  2 txs  0xde1c3377b419"},
		{bftBlockLine(1, "a", "a/validator-1", -1, 0, hash), "block 1     proposed by a      (a/validator-1)           0 txs  0xde1c3377b419"},
		{forkLine(9, seenHash{hash: hash, node: "a/tx-1"}, "c/public-1", common.Hash{0xab}),
			"ALARM      block 9 differs between nodes: a/tx-1 has 0xde1c3377b419, c/public-1 has 0xab0000000000 (a final block must be the same everywhere; read their logs)"},
	} {
		if tc.got != tc.want {
			t.Errorf("got  %q\nwant %q", tc.got, tc.want)
		}
	}
}
