package bfttest

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/ethereum/go-ethereum/common"
)

var members = []string{"a", "b", "c", "d"}

// TestBFTChain walks the chain's promises on one consortium, in order, so
// that four members' geth and consensus processes start once: the figures
// it logs are the ones docs/benchmarks.md records. Timing bounds here are
// generous (a loaded 2-core CI machine); the bars are checked by the
// figures, not by this test.
func TestBFTChain(t *testing.T) {
	c := newCluster(t, members...)
	vals := map[string]*node{}
	for _, m := range members {
		vals[m] = c.start(m, consortiuminit.RoleValidator)
		c.start(m, consortiuminit.RolePublic)
	}
	txNode := c.start("a", consortiuminit.RoleTx)
	start := time.Now()
	c.waitHeight(c.running(), 3, 3*time.Minute)
	t.Logf("every node at height 3 %v after the last start", time.Since(start).Round(time.Millisecond))

	// Every member's validator proposes: its fee recipient is the coinbase
	// of the blocks it proposed.
	c.eventually(90*time.Second, "a block proposed by every member", func() error {
		return c.everyMemberProposed(vals["a"])
	})

	// Each node reports its consensus view with its renewals: the
	// dashboard's source. Validators are named after their members.
	c.eventually(30*time.Second, "a's validator reporting its consensus view", func() error {
		return c.reportsConsensus(vals["a"])
	})

	// The cadence: blocks come about every target block time (1 s), not
	// the target plus a slow round.
	interval := c.blockInterval(vals["a"], 20)
	t.Logf("FIGURE block interval over 20 blocks at a's validator: %v (target 1s) (load %s)", interval.Round(time.Millisecond), loadavg())
	if interval > 3*time.Second {
		t.Errorf("a block every %v for a 1 s target", interval)
	}

	// A transaction sent at member a is final on every node within seconds.
	lat := c.sendTransfers(txNode, c.memberKey("a"), 100, 150*time.Millisecond, c.running())
	p50, p99 := percentile(lat, 50), percentile(lat, 99)
	t.Logf("FIGURE tx final on all %d nodes: p50 %v p99 %v max %v over %d transfers (load %s)", len(c.running()), p50.Round(time.Millisecond), p99.Round(time.Millisecond), percentile(lat, 100).Round(time.Millisecond), len(lat), loadavg())
	if p99 > 10*time.Second || p50 > 5*time.Second {
		t.Errorf("transaction finality p50 %v, p99 %v", p50, p99)
	}

	// One member's validator crashes (geth and consensus process): the
	// other three hold more than 2/3 of the power and go on.
	d := vals["d"]
	d.kill()
	killedAt := time.Now()
	h0 := c.maxHead()
	resumed := c.waitHeight(c.running(), h0+1, 30*time.Second)
	t.Logf("FIGURE d's validator killed: next block on every running node after %v (load %s)", resumed.Round(time.Millisecond), loadavg())
	if resumed > 15*time.Second {
		t.Errorf("blocks paused %v after one validator of four was lost", resumed)
	}
	c.waitHeight(c.running(), h0+5, 30*time.Second)
	down := time.Since(killedAt)

	// It comes back with nothing done by hand: catches up and signs again.
	d.restart()
	back := time.Now()
	c.waitHeight([]*node{d}, c.maxHead(), 60*time.Second)
	caught := time.Since(back)
	addr := c.member("d").Validator.Address.String()
	c.eventually(60*time.Second, "d's validator signing again", func() error {
		return c.signedRecently(vals["a"], addr)
	})
	signing := time.Since(back)
	t.Logf("FIGURE d's validator back after %v down: at the head after %v, signing after %v (load %s)", down.Round(time.Second), caught.Round(time.Millisecond), signing.Round(time.Millisecond), loadavg())
	if signing > 30*time.Second {
		t.Errorf("d's validator took %v to sign again", signing)
	}

	// Two of four lost: a third of the power or more is missing, so the
	// chain halts, and never forks.
	cv := vals["c"]
	cv.kill()
	d.kill()
	time.Sleep(3 * time.Second) // a block in flight may still commit
	halt := c.maxHead()
	time.Sleep(10 * time.Second)
	if h := c.maxHead(); h != halt {
		t.Errorf("the chain moved from %d to %d with two validators of four down", halt, h)
	}
	c.sameChain(c.running(), 1, halt)
	cv.restart()
	d.restart()
	back = time.Now()
	again := c.waitHeight(c.running(), halt+1, 60*time.Second)
	t.Logf("FIGURE two validators of four down: halted at %d for %v, no fork; both back: next block after %v (load %s)", halt, (time.Since(back) + 10*time.Second).Round(time.Second), again.Round(time.Millisecond), loadavg())
	if again > 30*time.Second {
		t.Errorf("blocks resumed %v after both validators came back", again)
	}

	// Long enough for the no-reorganisation promise: 200 blocks, the same
	// hash on every node at every height, no "Chain reorg detected".
	target := uint64(200)
	if os.Getenv("CONSORTIUM_BFT_BLOCKS") != "" {
		fmt.Sscan(os.Getenv("CONSORTIUM_BFT_BLOCKS"), &target)
	}
	c.waitHeight(c.running(), target, time.Duration(target)*3*time.Second)
	top, _ := minHead(c.running())
	c.sameChain(c.running(), 1, top)
	for _, n := range c.running() {
		b, err := os.ReadFile(n.geth.LogPath())
		if err != nil {
			t.Fatal(err)
		}
		if k := strings.Count(string(b), "Chain reorg detected"); k > 0 {
			t.Errorf("%s: geth logged %d reorganisations", n.name, k)
		}
	}
	for _, n := range c.running() {
		if n.spec.Role == consortiuminit.RoleValidator {
			t.Logf("FIGURE %s agent+consensus process RSS after %d blocks: %s", n.name, top, rss(n.agent.Pid()))
		}
	}
	t.Logf("FIGURE %d blocks, the same hash at every height on all %d nodes, no reorganisation; %v in all", top, len(c.running()), time.Since(start).Round(time.Second))
}

// blockInterval is the mean wall-clock time between n's heads over count
// blocks, timed from the first new head it sees.
func (c *cluster) blockInterval(n *node, count uint64) time.Duration {
	c.t.Helper()
	h0, err := n.head()
	if err != nil {
		c.t.Fatal(err)
	}
	c.waitHeight([]*node{n}, h0+1, 30*time.Second)
	start := time.Now()
	h1, _ := n.head()
	c.eventually(time.Duration(count)*5*time.Second, fmt.Sprintf("%s %d blocks past %d", n.name, count, h1), func() error {
		h, err := n.head()
		if err != nil || h < h1+count {
			return fmt.Errorf("head %d (%v)", h, err)
		}
		return nil
	})
	h2, _ := n.head()
	return time.Since(start) / time.Duration(h2-h1)
}

// maxHead is the highest head of the running nodes.
func (c *cluster) maxHead() uint64 {
	var top uint64
	for _, n := range c.running() {
		if h, err := n.head(); err == nil && h > top {
			top = h
		}
	}
	return top
}

// sameChain checks that every node has the same hash at every height in
// [from, to].
func (c *cluster) sameChain(nodes []*node, from, to uint64) {
	c.t.Helper()
	for h := from; h <= to; h++ {
		var want common.Hash
		for i, n := range nodes {
			b, err := n.block(h)
			if err != nil {
				c.t.Fatalf("height %d: %v", h, err)
			}
			if i == 0 {
				want = b.Hash
			} else if b.Hash != want {
				c.t.Fatalf("height %d: %s has %s, %s has %s", h, nodes[0].name, want, n.name, b.Hash)
			}
		}
	}
}

// everyMemberProposed checks that each member's fee recipient is the
// coinbase of some block n has.
func (c *cluster) everyMemberProposed(n *node) error {
	top, err := n.head()
	if err != nil {
		return err
	}
	seen := map[common.Address]bool{}
	for h := uint64(1); h <= top; h++ {
		b, err := n.block(h)
		if err != nil {
			return err
		}
		seen[b.Miner] = true
	}
	var missing []string
	for _, m := range c.man.Members {
		if !seen[m.FeeRecipient.Address] {
			missing = append(missing, m.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("no block proposed by %v in %d blocks", missing, top)
	}
	return nil
}

// signedRecently checks that validator addr's precommit is in one of the
// last three commits n's CometBFT has.
func (c *cluster) signedRecently(n *node, addr string) error {
	latest, err := n.cometBlock(0)
	if err != nil {
		return err
	}
	for h := latest.Height; h > latest.Height-3 && h > 1; h-- {
		b, err := n.cometBlock(h)
		if err != nil {
			return err
		}
		if b.Signers[addr] {
			return nil
		}
	}
	return fmt.Errorf("%s signed none of the commits up to %d", addr, latest.Height)
}

// rss is a process's resident set size, from /proc.
func rss(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "?"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

// loadavg is the machine's load, reported beside each figure.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
