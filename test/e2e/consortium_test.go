//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// TestConsortium brings the compose consortium up once and runs the
// scenarios in order; each leaves the consortium whole for the next. The
// figures are printed as "E2E FIGURE" lines and, with E2E_REPORT=FILE,
// written as a markdown table.
//
// It is the legacy Clique consortium's suite: BFT is the reference (make
// e2e runs TestBFTConsortium), and this one runs with E2E_CLIQUE=1.
func TestConsortium(t *testing.T) {
	if os.Getenv("E2E_CLIQUE") != "1" {
		t.Skip("the legacy Clique compose consortium runs with E2E_CLIQUE=1")
	}
	c, up := start(t)
	t.Cleanup(func() {
		if f := os.Getenv("E2E_REPORT"); f != "" {
			os.WriteFile(f, []byte(c.summary()), 0o644)
		}
		fmt.Printf("E2E SUMMARY\n%s", c.summary())
	})
	if !t.Run("mesh and first blocks", func(t *testing.T) { c.meshAndFirstBlocks(t, up) }) {
		return
	}
	t.Run("no private address crosses members", c.noPrivateAddressLeaks)
	t.Run("transaction at a visible at c", c.transaction)
	t.Run("member c cut off", c.memberCutOff)
	t.Run("registrar replica and etcd member lost", c.replicaAndEtcdMemberLost)
	t.Run("registrar stopped", c.registrarOutage)
	t.Run("bootnode recreated", c.bootnodeRecreated)
	t.Run("public node moves", c.publicNodeMoves)
}

// meshAndFirstBlocks waits, from the moment up.sh started, for the
// intended mesh and for a block sealed by each member to have reached
// every member.
func (c *consortium) meshAndFirstBlocks(t *testing.T, up time.Time) {
	firstAt := map[string]time.Duration{} // signer's member -> when its first block was at every member
	var meshAt time.Duration
	slowMesh := false
	deadline := time.Now().Add(5 * time.Minute)
	lastGaps := ""
	for meshAt == 0 || len(firstAt) < len(members) {
		if time.Now().After(deadline) {
			t.Fatalf("after 5 minutes: mesh gaps %q; members whose blocks reached everyone: %v", lastGaps, firstAt)
		}
		var wg sync.WaitGroup
		var gaps []string
		wg.Add(1)
		go func() { defer wg.Done(); gaps = c.meshGaps() }()
		seen := make([]map[string]bool, len(members)) // per member's tx node: members whose blocks it has
		for i, m := range members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ch, err := c.chain(m+"-tx", 1)
				if err != nil {
					return
				}
				seen[i] = map[string]bool{}
				for _, s := range ch.Signers {
					seen[i][c.signers[strings.ToLower(s)]] = true
				}
			}()
		}
		wg.Wait()
		now := time.Since(up)
		if meshAt == 0 && len(gaps) == 0 {
			meshAt = now
		}
		lastGaps = strings.Join(gaps, "; ")
		// A link still missing after 30 s may be waiting out geth's
		// 35 s dial history (a first dial that failed): say which, so a slow
		// mesh in a CI run, whose container logs are gone, can be told apart.
		if meshAt == 0 && !slowMesh && now > 30*time.Second {
			slowMesh = true
			t.Logf("mesh not complete %.0f s after up: %s", now.Seconds(), lastGaps)
		}
		for _, signer := range members {
			if _, done := firstAt[signer]; done {
				continue
			}
			everywhere := true
			for i := range members {
				everywhere = everywhere && seen[i] != nil && seen[i][signer]
			}
			if everywhere {
				firstAt[signer] = now
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	c.record(t, "up → full mesh", meshAt, fmt.Sprintf("9 geth nodes, %d connections, each checked with admin_peers", c.connections()))
	for _, m := range members {
		c.record(t, "up → a block sealed by "+m+" at every member", firstAt[m], "")
	}
}

func (c *consortium) connections() int {
	n := 0
	for _, nd := range c.gethNodes() {
		n += len(c.expectedPeers(nd))
	}
	return n / 2
}

var enrRE = regexp.MustCompile(`enr:[A-Za-z0-9_-]+`)

// noPrivateAddressLeaks reads, with each member's credential, everything
// the registrar serves, and looks for another member's private addresses:
// in plain text and inside every ENR.
func (c *consortium) noPrivateAddressLeaks(t *testing.T) {
	var ids []string
	for _, n := range c.nodes {
		ids = append(ids, n.id)
	}
	sort.Strings(ids)
	checked := 0
	for vi, viewer := range members {
		cred := c.creds[viewer]
		paths := []string{"/v1/nodes", "/v1/whoami", "/v1/members", "/v1/events", "/", "/enodes", "/staticenodes", "/parityenodes", "/metrics", "/healthz", "/readyz", "/dashboard", "/dashboard/"}
		for _, m := range members {
			paths = append(paths, "/?network="+m, "/enodes?network="+m, "/staticenodes?network="+m, "/parityenodes?network="+m)
		}
		for _, id := range ids {
			paths = append(paths, "/v1/nodes/"+id)
			if c.byID[id].member == viewer {
				for _, f := range []string{"json", "toml", "enr", "bootnodes"} {
					paths = append(paths, "/v1/nodes/"+id+"/peers?format="+f)
				}
			} else {
				paths = append(paths, "/v1/nodes/"+id+"/peers")
			}
		}
		for _, r := range []string{"bootnode", "validator", "tx", "public"} {
			paths = append(paths, "/v1/peers?role="+r)
		}
		for _, p := range paths {
			code, body, err := c.get(p, cred)
			if err != nil {
				t.Fatalf("%s as %s: %v", p, viewer, err)
			}
			checked++
			text := string(body)
			for _, enr := range enrRE.FindAllString(text, -1) {
				if n, err := enode.Parse(enode.ValidSchemes, enr); err == nil {
					text += " " + n.IPAddr().String() + "."
				}
			}
			for oi, other := range members {
				if oi == vi {
					continue
				}
				subnet := fmt.Sprintf("%s.%d.", netPrefix, oi+1)
				if strings.Contains(text, subnet) {
					t.Errorf("member %s reads a private address of member %s (%s*) in GET %s (%d): %.300s", viewer, other, subnet, p, code, body)
				}
			}
		}
	}
	// And the positive side: the public nodes are visible, by their
	// public endpoints.
	code, body, err := c.get("/v1/nodes", c.creds["b"])
	if err != nil || code != 200 {
		t.Fatalf("GET /v1/nodes as b: %d %v", code, err)
	}
	for _, m := range []string{"a", "c"} {
		ip := c.publicIP(m)
		if !strings.Contains(string(body), "@"+ip+":30303") {
			t.Errorf("member b does not see %s's public node at %s: %.500s", m, ip, body)
		}
	}
	t.Logf("%d answers read with the three members' credentials: no private address of another member", checked)
}

func (c *consortium) publicIP(member string) string {
	for i, m := range members {
		if m == member {
			return fmt.Sprintf("%s.0.%d", netPrefix, 11+i)
		}
	}
	return ""
}

// transaction signs a transfer with member a's signer account, sends it to
// a's transaction node, and waits for its receipt at c's.
func (c *consortium) transaction(t *testing.T) {
	v := c.nodes["a-validator"]
	tx, raw, to, value := signTransfer(t, v.keystore, v.password, c.man.ChainID,
		func(expr string, out any) error { return c.gethJS("a-tx", expr, out) })
	sent := time.Now()
	var hash string
	if err := c.gethJS("a-tx", fmt.Sprintf(`eth.sendRawTransaction(%q)`, hexutil.Encode(raw)), &hash); err != nil {
		t.Fatal(err)
	}
	if hash != tx.Hash().Hex() {
		t.Fatalf("a-tx answered hash %s for %s", hash, tx.Hash().Hex())
	}
	// Clique reorganises often here (about once in ten blocks: an
	// out-of-turn block replaced by the in-turn one, one block deep), and a
	// transaction in the dropped block goes back to the pool: seen once, a
	// receipt at c-tx whose block was replaced before the balance was read.
	// So the transfer counts as visible at c when c-tx has its receipt and
	// the balance, read after it, agrees; the figure is the time to that.
	var block, firstBlock uint64
	var firstReceipt time.Duration
	d := waitFor(t, "receipt and balance at c-tx", 2*time.Minute, 250*time.Millisecond, func() (bool, string) {
		var r struct {
			Status      string `json:"status"`
			BlockNumber uint64 `json:"blockNumber"`
		}
		if err := c.gethJS("c-tx", fmt.Sprintf(`eth.getTransactionReceipt(%q)`, hash), &r); err != nil {
			return false, err.Error()
		}
		if r.Status == "" {
			return false, "no receipt yet"
		}
		if r.Status != "0x1" {
			t.Fatalf("receipt status %s", r.Status)
		}
		if firstReceipt == 0 {
			firstReceipt, firstBlock = time.Since(sent), r.BlockNumber
		}
		var bal string
		if err := c.gethJS("c-tx", fmt.Sprintf(`eth.getBalance(%q).toString(10)`, to.Hex()), &bal); err != nil {
			return false, err.Error()
		}
		if bal != value.String() {
			return false, fmt.Sprintf("receipt in block %d, but the balance of %s at c-tx is %s, want %s (a reorganisation)", r.BlockNumber, to.Hex(), bal, value)
		}
		block = r.BlockNumber
		return true, ""
	})
	if block != firstBlock {
		t.Logf("the transfer's first receipt at c-tx (%.1f s, block %d) was reorganised away; it was mined again in block %d", firstReceipt.Seconds(), firstBlock, block)
	}
	c.record(t, "transaction sent at a-tx → receipt at c-tx", d, fmt.Sprintf("block %d, 2 s Clique period; receipt and balance read in one poll", block))
}
