package devnet

import (
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/consortium/consortium/internal/registry"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Issue 24 item 6: what the devnet prints is true and not alarming.

// An out-of-turn sibling replaced by the in-turn block is Clique's normal
// race: explained once, then marked briefly; a replaced in-turn block is
// still called a reorg.
func TestReplaceNote(t *testing.T) {
	h := common.HexToHash("0xabcdef0123456789")
	outOfTurn := shownBlock{hash: h, member: "b", inTurn: false}
	inTurn := shownBlock{hash: h, member: "b", inTurn: true}
	for _, tc := range []struct {
		name          string
		old           shownBlock
		newInTurn     bool
		explained     bool
		want, notWant string
	}{
		{"first sibling", outOfTurn, true, false, "normal under Clique", "reorg"},
		{"later sibling", outOfTurn, true, true, "(replaces a sibling)", "reorg"},
		{"in-turn block replaced", inTurn, false, true, "(a reorg: replaces 0x", "sibling"},
		{"in-turn block replaced by in-turn", inTurn, true, false, "a reorg", "sibling"},
		{"out of turn by out of turn", outOfTurn, false, false, "a reorg", "sibling"},
	} {
		got := replaceNote(tc.old, tc.newInTurn, tc.explained)
		if !strings.Contains(got, tc.want) || strings.Contains(got, tc.notWant) {
			t.Errorf("%s: %q, want %q and not %q", tc.name, got, tc.want, tc.notWant)
		}
	}
}

// A node's first registration in a rerun updates the record the last run
// left: that is not "a new record"; a record replaced during the run is.
func TestRegisteredLine(t *testing.T) {
	for _, tc := range []struct {
		update, said bool
		want         string
	}{
		{false, false, "registered a/tx-1           tx"},
		{true, false, "registered a/tx-1           tx (again: the registrar kept its record from an earlier run)"},
		{true, true, "registered a/tx-1           tx (a new record)"},
	} {
		if got := registeredLine("a/tx-1", "tx", tc.update, tc.said); got != tc.want {
			t.Errorf("update=%v said=%v: %q, want %q", tc.update, tc.said, got, tc.want)
		}
	}
}

// A node started outside the devnet but registered is named by its
// registration and judged by the policy; only a node the registrar does not
// know is "unknown".
func TestLinkLine(t *testing.T) {
	v := view{
		names: map[string]string{"aaa": "a/public-1", "bbb": "a/tx-1", "ccc": "b/tx-1"},
		roles: map[string]string{"aaa": "public", "bbb": "tx", "ccc": "tx"},
	}
	ext := "e0e1e2e3e4e5e6e7e8e9"
	regs := map[string]registry.NodeView{ext: {ID: ext, Member: "a", Role: "tx"}}
	for _, tc := range []struct {
		name      string
		p         [2]string
		intended  bool
		a, b      string
		wantNote  string
		regsGiven map[string]registry.NodeView
	}{
		{"devnet pair", pairOf("a/public-1", "a/tx-1"), true, "a/public-1", "a/tx-1", "", regs},
		{"devnet pair against the policy", pairOf("a/tx-1", "b/tx-1"), false, "a/tx-1", "b/tx-1", "  (outside the peer policy)", regs},
		{"registered outside, same member", pairOf("a/tx-1", outsidePrefix+ext), false, "a/tx-1", "a/e0e1e2e3e4e5", "", regs},
		{"registered outside, other member's tx", pairOf("b/tx-1", outsidePrefix+ext), false, "b/tx-1", "a/e0e1e2e3e4e5", "  (outside the peer policy)", regs},
		{"not registered", pairOf("a/tx-1", outsidePrefix+ext), false, "a/tx-1", "unknown node e0e1e2e3e4e5", "  (a node the registrar does not know: outside the peer policy)", nil},
	} {
		a, b, note := linkLine(v, tc.regsGiven, tc.p, tc.intended)
		if a != tc.a && b != tc.a || a != tc.b && b != tc.b || note != tc.wantNote {
			t.Errorf("%s: %q <-> %q %q, want %q <-> %q %q", tc.name, a, b, note, tc.a, tc.b, tc.wantNote)
		}
	}
}

// devnet.json gives a geth node's enode (it said "" for every one): the
// node's key and its listen port, which parse back to its ID.
func TestGethNodeEnode(t *testing.T) {
	key, _ := crypto.GenerateKey()
	spec := nodeSpec{Member: "a", Index: 3, Node: consortiuminit.Node{
		Name: "tx-1", ID: enode.PubkeyToIDV4(&key.PublicKey).String(),
		Pubkey: hex.EncodeToString(crypto.FromECDSAPub(&key.PublicKey)[1:]),
	}}
	e := &env{dir: t.TempDir(), ipcDir: t.TempDir(), basePort: 40000, log: slog.New(slog.DiscardHandler)}
	n := newGethNode(e, spec, nil)
	en, err := enode.ParseV4(n.Enode())
	if err != nil {
		t.Fatalf("%q: %v", n.Enode(), err)
	}
	if en.ID().String() != spec.ID || en.TCP() != 40003 || en.IP().String() != "127.0.0.1" {
		t.Errorf("enode %s: ID %s port %d, want %s on 127.0.0.1:40003", n.Enode(), en.ID(), en.TCP(), spec.ID)
	}
}
