package devnet

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
)

// The Clique chain's block lines: each block with the signer that sealed
// it, and a block again when a reorg replaced it.

// reorgWindow is how many of the latest printed heights the monitor reads
// again on every tick. A block is first read at whichever node is highest,
// and ties go to the nodes listed first (a's): under load those are the
// last to receive another member's block, so at a height where two
// signers raced, the first read often shows the sibling that the chain
// then drops. A height read only once would credit the loser forever: a
// new member whose in-turn blocks all won that way would never be seen to
// seal, and its join would time out with its blocks on the chain.
const reorgWindow = 16

// shownBlock is what a block line said about a height.
type shownBlock struct {
	hash   common.Hash
	member string
	inTurn bool
}

// replaceNote is what a block line adds when its block took the place of
// old, one printed before at its height. Three or more Clique signers race:
// a signer out of turn seals after a short random delay, and the in-turn
// signer's block (difficulty 2) wins wherever both arrive, so an
// out-of-turn sibling replaced by an in-turn block is Clique working as
// designed, seen at about every third block. That is said once, with the
// reason (explained reports whether it was), then marked briefly; anything
// else (an in-turn block replaced) is a reorg proper.
func replaceNote(old shownBlock, inTurn, explained bool) string {
	switch {
	case !old.inTurn && inTurn && !explained:
		return fmt.Sprintf("  (replaces %s's out-of-turn sibling %s: normal under Clique, where the in-turn block wins a race; later ones say \"replaces a sibling\")",
			old.member, old.hash.Hex()[:14])
	case !old.inTurn && inTurn:
		return "  (replaces a sibling)"
	}
	return fmt.Sprintf("  (a reorg: replaces %s of %s)", old.hash.Hex()[:14], old.member)
}

// blockInfo is the part of eth_getBlockByNumber a block line needs.
type blockInfo struct {
	Hash common.Hash   `json:"hash"`
	Txs  []common.Hash `json:"transactions"`
	Diff *hexutil.Big  `json:"difficulty"`
}

// blocks prints the blocks after the last one printed, up to head, as src
// has them, each with the member whose signer sealed it; and a block again
// when src now holds another block at a height printed lately (a reorg).
func (m *monitor) blocks(ctx context.Context, v view, src *gethNode, head uint64) {
	c := m.client(ctx, src.ipcPath)
	if c == nil {
		return
	}
	if m.reusedChain(head) {
		return
	}
	m.mu.Lock()
	from := m.printed + 1
	m.mu.Unlock()
	lo := uint64(1)
	if from > reorgWindow {
		lo = from - reorgWindow
	}
	for n := range m.shown {
		if n < lo {
			delete(m.shown, n)
		}
	}
	// Heights printed already: one batch, and a signer lookup only for a
	// block that changed.
	var (
		heights []uint64
		batch   []rpc.BatchElem
	)
	for n := lo; n < from && n <= head; n++ {
		heights = append(heights, n)
		batch = append(batch, rpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{hexutil.EncodeUint64(n), false}, Result: new(blockInfo)})
	}
	if len(batch) > 0 {
		bctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.BatchCallContext(bctx, batch)
		cancel()
		if err != nil {
			c.Close()
			delete(m.clients, src.ipcPath)
			return
		}
		for i, n := range heights {
			blk := batch[i].Result.(*blockInfo)
			old, ok := m.shown[n]
			if batch[i].Error != nil || blk.Hash == (common.Hash{}) || !ok || old.hash == blk.Hash {
				continue
			}
			if !m.block(ctx, c, src, v, n, *blk, old.hash) {
				return
			}
		}
	}
	for n := from; n <= head; n++ {
		var blk blockInfo
		if err := m.call(ctx, c, src.ipcPath, &blk, "eth_getBlockByNumber", hexutil.EncodeUint64(n), false); err != nil {
			return
		}
		if !m.block(ctx, c, src, v, n, blk, common.Hash{}) {
			return
		}
		m.mu.Lock()
		m.printed = n
		m.mu.Unlock()
	}
}

// block prints one block line (replacing, when not zero, is the block a
// reorg took out) and notes a member's first block.
func (m *monitor) block(ctx context.Context, c *rpc.Client, src *gethNode, v view, n uint64, blk blockInfo, replacing common.Hash) bool {
	// By hash, so the signer is that of this very block even if src
	// reorganises between the two calls.
	var signer common.Address
	if err := m.call(ctx, c, src.ipcPath, &signer, "clique_getSigner", blk.Hash); err != nil {
		return false
	}
	label := v.signers[signer]
	member, _, _ := strings.Cut(label, "/")
	if label == "" {
		member, label = "?", "unknown signer"
	}
	inTurn := blk.Diff != nil && blk.Diff.ToInt().Int64() == 2
	turn := "out of turn"
	if inTurn {
		turn = "in turn"
	}
	note := ""
	if replacing != (common.Hash{}) {
		old := m.shown[n]
		note = replaceNote(old, inTurn, m.siblingSaid)
		m.siblingSaid = m.siblingSaid || (!old.inTurn && inTurn)
	}
	m.d.out.printf("block %-5d sealed by %-6s (%s, %s)  %d txs  %s%s", n, member, label, turn, len(blk.Txs), blk.Hash.Hex()[:14], note)
	m.shown[n] = shownBlock{hash: blk.Hash, member: member, inTurn: inTurn}
	m.firstBlock(member, "sealed")
	return true
}
