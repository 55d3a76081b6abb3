package devnet

import (
	"context"
	"fmt"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
)

// The BFT chain's block lines: each final block with the member whose
// validator proposed it and the time since the block before. A final
// block never changes, so where the Clique lines watch for reorgs these
// watch for the one thing that must never happen: two nodes holding
// different blocks at one height.

// hashWindow is how many of the latest heights the hash book keeps.
const hashWindow = 256

// seenHash is the first hash a node showed at a height, and that node.
type seenHash struct {
	hash common.Hash
	node string
}

// hashBook catches a height whose block differs between nodes: every hash
// any node shows is compared with the first one seen at that height.
type hashBook struct {
	seen    map[uint64]seenHash
	alarmed map[uint64]bool
	top     uint64
}

func newHashBook() *hashBook {
	return &hashBook{seen: map[uint64]seenHash{}, alarmed: map[uint64]bool{}}
}

// observe notes that node holds hash at height. It returns the earlier
// sighting and true when that was another hash: once per height, so one
// fork makes one alarm. Heights more than hashWindow below the highest
// seen are forgotten.
func (b *hashBook) observe(height uint64, hash common.Hash, node string) (seenHash, bool) {
	if hash == (common.Hash{}) || (b.top >= hashWindow && height <= b.top-hashWindow) {
		return seenHash{}, false
	}
	if height > b.top {
		b.top = height
		if b.top >= hashWindow {
			for h := range b.seen {
				if h <= b.top-hashWindow {
					delete(b.seen, h)
					delete(b.alarmed, h)
				}
			}
		}
	}
	first, ok := b.seen[height]
	if !ok {
		b.seen[height] = seenHash{hash: hash, node: node}
		return seenHash{}, false
	}
	if first.hash == hash || b.alarmed[height] {
		return seenHash{}, false
	}
	b.alarmed[height] = true
	return first, true
}

// forkLine is the alarm printed when two nodes differ at a height.
func forkLine(height uint64, first seenHash, node string, hash common.Hash) string {
	return fmt.Sprintf("ALARM      block %d differs between nodes: %s has %s, %s has %s (a final block must be the same everywhere; read their logs)",
		height, first.node, first.hash.Hex()[:14], node, hash.Hex()[:14])
}

// bftBlockLine is one final block: its proposer's member and validator
// node, the time since the block before (gap < 0: unknown), its
// transactions and hash.
func bftBlockLine(n uint64, member, label string, gap time.Duration, txs int, hash common.Hash) string {
	since := "       "
	if gap >= 0 {
		since = fmt.Sprintf("+%5.2fs", gap.Seconds())
	}
	return fmt.Sprintf("block %-5d proposed by %-6s (%s)  %s  %d txs  %s", n, member, label, since, txs, hash.Hex()[:14])
}

// blockGap is the time between blocks n-1 and n: between the moments a
// consensus node of this process first decided each (decided, read every
// decidedEvery), else from the blocks' own timestamps, which geth keeps in
// whole seconds. (CometBFT's block times would not do: a block's time is
// when the block before it was decided, so their gaps lag a block.)
func blockGap(decided map[uint64]time.Time, n uint64, prevTime, time_ uint64) time.Duration {
	if a, ok := decided[n-1]; ok {
		if b, ok := decided[n]; ok {
			return b.Sub(a)
		}
	}
	if prevTime == 0 || time_ < prevTime {
		return -1
	}
	return time.Duration(time_-prevTime) * time.Second
}

// decidedEvery is how often the monitor reads its consensus nodes' heights:
// the precision of a block line's time since the block before.
const decidedEvery = 20 * time.Millisecond

// watchDecided notes when a consensus node of this process first decided
// each height. Reading a status is a lock and a copy, so twenty times a
// second per node costs nothing.
func (m *monitor) watchDecided(ctx context.Context) {
	defer close(m.decidedDone)
	t := time.NewTicker(decidedEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.d.mu.Lock()
		nodes := m.d.nodes
		m.d.mu.Unlock()
		now := time.Now()
		for _, n := range nodes {
			st, ok := n.consensusStatus()
			if !ok || st.Height <= 0 {
				continue
			}
			h := uint64(st.Height)
			m.mu.Lock()
			if _, seen := m.decided[h]; !seen {
				m.decided[h] = now
				for old := range m.decided {
					if old+hashWindow < h {
						delete(m.decided, old)
					}
				}
			}
			m.mu.Unlock()
		}
	}
}

// decidedAt copies the decision times of heights n-1 and n.
func (m *monitor) decidedAt(n uint64) map[uint64]time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[uint64]time.Time{}
	for _, h := range []uint64{n - 1, n} {
		if t, ok := m.decided[h]; ok {
			out[h] = t
		}
	}
	return out
}

// bftBlockInfo is the part of eth_getBlockByNumber a BFT block line needs.
type bftBlockInfo struct {
	Hash  common.Hash    `json:"hash"`
	Miner common.Address `json:"miner"`
	Time  hexutil.Uint64 `json:"timestamp"`
	Txs   []common.Hash  `json:"transactions"`
}

// bftBlocks prints the final blocks after the last one printed, up to
// head, as src has them.
func (m *monitor) bftBlocks(ctx context.Context, v view, src *gethNode, head uint64) {
	c := m.client(ctx, src.ipcPath)
	if c == nil || m.reusedChain(head) {
		return
	}
	m.mu.Lock()
	from := m.printed + 1
	m.mu.Unlock()
	for n := from; n <= head; n++ {
		var blk bftBlockInfo
		if err := m.call(ctx, c, src.ipcPath, &blk, "eth_getBlockByNumber", hexutil.EncodeUint64(n), false); err != nil {
			return
		}
		m.observeHash(n, blk.Hash, src.spec.Label())
		member, ok := v.proposers[blk.Miner]
		label := v.validators[member]
		if !ok {
			member, label = "?", "fee recipient "+blk.Miner.Hex()
		}
		gap := time.Duration(-1)
		if n == m.prevNumber+1 {
			gap = blockGap(m.decidedAt(n), n, m.prevTime, uint64(blk.Time))
		}
		m.prevNumber, m.prevTime = n, uint64(blk.Time)
		m.d.out.printf("%s", bftBlockLine(n, member, label, gap, len(blk.Txs), blk.Hash))
		m.firstBlock(member, "proposed")
		m.mu.Lock()
		m.printed = n
		m.mu.Unlock()
	}
}

// observeHash feeds the hash book and prints the alarm it raises.
func (m *monitor) observeHash(height uint64, hash common.Hash, node string) {
	if first, differs := m.hashes.observe(height, hash, node); differs {
		m.d.out.printf("%s", forkLine(height, first, node, hash))
		m.mu.Lock()
		m.st.Forks++
		m.mu.Unlock()
	}
}
