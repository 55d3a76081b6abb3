//go:build linux

package devnet

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/rpc"
)

// TestBFTDevnet runs the default devnet for real: four members, each with
// a bootnode, a validator, a transaction node and a public node (twelve
// geth v1.17.10 processes, each with its CometBFT node and agent in this
// process), and walks through what issue 17 asks of it. The subtests share
// one devnet and run in order. Not parallel: it runs alone, before the
// parallel Clique tests, so the two chains never share the two cores.
func TestBFTDevnet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs twelve geth processes; skipped with -short")
	}
	geth := gethtest.Binary(t, gethtest.V117)
	funder, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("devnet output:\n%s", out.String())
		}
	})
	dir := filepath.Join(t.TempDir(), "devnet")
	keepLogs(t, dir, &out)
	ctx := context.Background()
	began := time.Now()
	d, err := Start(ctx, Config{
		Dir: dir, Geth: geth, CLI: consortiumBin(t),
		RegistrarListen: "127.0.0.1:0", BasePort: 27000, TTL: 10 * time.Second,
		Prefund: []common.Address{crypto.PubkeyToAddress(funder.PublicKey)},
		Out:     &out,
	})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			d.Close()
		}
	})
	if m := d.Manifest(); m.Consensus != BFT || len(m.Members) != 4 {
		t.Fatalf("default devnet: %s with %d members, want bft with 4", m.Consensus, len(m.Members))
	}
	rpcOf := func(label string) string {
		for _, n := range d.Nodes() {
			if n.Label() == label {
				return n.RPC
			}
		}
		t.Fatalf("no node %s", label)
		return ""
	}

	t.Run("every member proposes", func(t *testing.T) {
		testutil.EventuallyTrue(t, 4*time.Minute, "not every member proposed a block", func() bool { return len(d.Stats().FirstBlock) == 4 })
		t.Logf("every member proposed %.1fs after Start", time.Since(began).Seconds())
		for _, m := range []string{"a", "b", "c", "d"} {
			if !strings.Contains(out.String(), "proposed by "+m) {
				t.Errorf("no block line names member %s", m)
			}
		}
		// The agents report the consensus view with their renewals: what
		// the dashboard's consensus panel shows.
		var why string
		testutil.EventuallyTrue(t, 30*time.Second, "no consensus view at the registrar", func() bool {
			for _, n := range d.Nodes() {
				if n.Label() != "a/validator-1" {
					continue
				}
				v, err := d.reg.reg.Node(admin, n.ID)
				if err != nil || v.Status == nil || v.Status.Consensus == nil {
					why = fmt.Sprintf("a/validator-1: %v, no consensus status", err)
					return false
				}
				cs := v.Status.Consensus
				names := map[string]bool{}
				for _, val := range cs.Validators {
					names[val.Name] = true
				}
				why = fmt.Sprintf("%+v", *cs)
				return cs.Height > 0 && cs.Validator != "" && len(names) == 4 && names["a"] && names["d"]
			}
			return false
		})
		t.Logf("a/validator-1's consensus view at the registrar: %s", why)
	})

	t.Run("every node holds the same block at every height", func(t *testing.T) {
		const stretch = 10
		to := d.Stats().Head + stretch
		testutil.EventuallyTrue(t, 2*time.Minute, fmt.Sprintf("not every node reached block %d", to), func() bool {
			for _, n := range d.Nodes() {
				if n.RPC != "" && headOf(n.RPC) < to {
					return false
				}
			}
			return true
		})
		want := hashesAt(t, rpcOf("a/validator-1"), to)
		for _, n := range d.Nodes() {
			if n.RPC == "" {
				continue
			}
			got := hashesAt(t, n.RPC, to)
			for h := range want {
				if got[h] != want[h] {
					t.Errorf("%s: block %d is %s, a/validator-1 has %s", n.Label(), h+1, got[h], want[h])
				}
			}
		}
		if st := d.Stats(); st.Forks != 0 || strings.Contains(out.String(), "ALARM") {
			t.Errorf("the monitor saw %d heights differ between nodes", st.Forks)
		}
		// geth's own peering is slower than the chain: a dial that failed
		// is not retried for 35 s (p2p/dial.go), so on a loaded machine the
		// last link may come after the blocks above. Wait for it, boundedly.
		testutil.EventuallyTrue(t, 2*time.Minute, "the mesh never completed", func() bool {
			return !d.Stats().Mesh.IsZero()
		})
		if !strings.Contains(out.String(), "mesh complete: 12 geth nodes, 18 links") {
			st := d.Stats()
			t.Errorf("no mesh line (3 links inside each of 4 members, 6 between their public nodes); %d/%d links", st.Links, st.Expected)
		}
	})

	t.Run("a plain geth per member joins through the registrar's DNS", func(t *testing.T) {
		if os.Geteuid() != 0 {
			if !strings.Contains(out.String(), "no plain-geth node: geth asks port 53") {
				t.Errorf("not root, and the output does not say why no plain-geth node runs")
			}
			t.Skip("needs root: port 53 and a mount namespace per plain geth")
		}
		testutil.EventuallyTrue(t, 3*time.Minute, "not every member's plain geth joined", func() bool { return len(d.Stats().PlainJoined) == 4 })
		st := d.Stats()
		dialled := 0
		for m, took := range st.PlainJoined {
			// It has no static peer and no bootnode: a peer it dialled
			// came from its tree.
			t.Logf("%s/%s joined via DNS %.1fs after its start; dialled %d of its member's 3 nodes itself", m, plainName, took.Seconds(), st.PlainDialled[m])
			dialled += st.PlainDialled[m]
		}
		// The member's agents may win the race to every connection of one
		// plain node (they know it from its record, registered before its
		// geth starts); not of all four: some dials came from the trees.
		if dialled == 0 {
			t.Error("no plain geth dialled any of its peers: none found them in its tree")
		}
		for _, l := range strings.Split(out.String(), "\n") {
			if strings.Contains(l, "dns-1") && (strings.Contains(l, "started") || strings.Contains(l, "dns  ")) {
				t.Log(l)
			}
		}
		if strings.Count(out.String(), "joined via DNS") != 4 {
			t.Errorf("want 4 \"joined via DNS\" lines")
		}
		// It asked the registrar: the trees were answered over DNS.
		if a := d.dns.srv.Stats().Answers; a == 0 {
			t.Errorf("the DNS server answered nothing")
		}
		// Nothing but the tree named a peer: no static peers, no bootnodes.
		for _, n := range d.plain {
			b, err := os.ReadFile(n.configPath)
			if err != nil || strings.Contains(string(b), "StaticNodes") || strings.Contains(string(b), "BootstrapNodes") {
				t.Errorf("%s's config.toml names peers (%v):\n%s", n.spec.Label(), err, b)
			}
		}
	})

	t.Run("tx sent at a is final at d", func(t *testing.T) {
		chainID := new(big.Int).SetUint64(d.Manifest().ChainID)
		sent := time.Now()
		hash := sendTx(t, rpcOf("a/tx-1"), funder, chainID, 0)
		var receipt *struct {
			Status    hexutil.Uint64 `json:"status"`
			BlockHash common.Hash    `json:"blockHash"`
		}
		testutil.EventuallyTrue(t, 30*time.Second, "no receipt at d/tx-1", func() bool {
			return rpcCall(rpcOf("d/tx-1"), &receipt, "eth_getTransactionReceipt", hash) == nil && receipt != nil
		})
		t.Logf("sent at a/tx-1, receipt at d/tx-1 after %.2fs", time.Since(sent).Seconds())
		if receipt.Status != 1 {
			t.Errorf("receipt status %d", receipt.Status)
		}
		// Final: a holds the very same block, at once.
		var at *struct {
			BlockHash common.Hash `json:"blockHash"`
		}
		testutil.EventuallyTrue(t, 5*time.Second, "no receipt at a/tx-1", func() bool {
			return rpcCall(rpcOf("a/tx-1"), &at, "eth_getTransactionReceipt", hash) == nil && at != nil
		})
		if at.BlockHash != receipt.BlockHash {
			t.Errorf("the tx is in %s at a and %s at d", at.BlockHash, receipt.BlockHash)
		}
	})

	t.Run("one validator down, the chain goes on; back, it catches up", func(t *testing.T) {
		ref := rpcOf("a/tx-1")
		if err := d.StopNode("b/validator-1"); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		from := headOf(ref)
		testutil.EventuallyTrue(t, 30*time.Second, "the chain stopped with b's validator down", func() bool { return headOf(ref) >= from+3 })
		t.Logf("three blocks without b's validator within %.1fs", time.Since(stopped).Seconds())
		if err := d.StartNode(ctx, "b/validator-1"); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		bRPC := rpcOf("b/validator-1")
		testutil.EventuallyTrue(t, 60*time.Second, "b's validator did not catch up", func() bool { return headOf(bRPC) >= headOf(ref) })
		t.Logf("b's validator at the head %.1fs after its start", time.Since(back).Seconds())
		n, err := d.node("b/validator-1")
		if err != nil {
			t.Fatal(err)
		}
		testutil.EventuallyTrue(t, 30*time.Second, "b's validator does not sign again", func() bool {
			st, ok := n.consensusStatus()
			return ok && st.IsValidator && slices.Contains(st.Signers, validatorAddr(t, d, "b"))
		})
	})

	t.Run("a validator killed with SIGKILL comes back at its height", func(t *testing.T) {
		// geth runs with crash-safe state (state_scheme.go): with geth's
		// default it came back at genesis, its state of recent blocks lost
		// ("Head state missing, repairing"). It may still lose its last
		// few writes: geth writes its database without waiting for them to
		// reach the file (pebble NoSync; its WAL is flushed every 500 KB),
		// so a kill takes those with it and the consensus node replays
		// those heights. lostBound bounds that loss.
		const label, lostBound = "c/validator-1", 32
		n, err := d.node(label)
		if err != nil {
			t.Fatal(err)
		}
		testutil.EventuallyTrue(t, 2*time.Minute, label+" never reached block 8", func() bool { return headOf(n.RPCURL()) >= 8 })
		at := headOf(n.RPCURL())
		pid, up := n.running()
		if !up {
			t.Fatalf("%s is not running", label)
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		testutil.EventuallyTrue(t, 30*time.Second, label+"'s geth did not die", func() bool { _, up := n.running(); return !up })
		if err := d.StopNode(label); err != nil { // its agent and consensus node
			t.Fatal(err)
		}
		if err := d.StartNode(ctx, label); err != nil {
			t.Fatal(err)
		}
		loaded, repaired := restartHead(t, n.logPath)
		t.Logf("%s killed at block %d or later; its geth came back at block %d", label, at, loaded)
		if repaired != "" {
			t.Errorf("%s's geth lost its state: %s", label, repaired)
		}
		if loaded == 0 || loaded+lostBound < at {
			t.Errorf("%s's geth came back at block %d, not at its height (%d or later, less at most %d unsynced)", label, loaded, at, lostBound)
		}
		ref := rpcOf("a/tx-1")
		testutil.EventuallyTrue(t, 60*time.Second, label+" did not catch up", func() bool { return headOf(n.RPCURL()) >= headOf(ref) })
		testutil.EventuallyTrue(t, 30*time.Second, label+" does not sign again", func() bool {
			st, ok := n.consensusStatus()
			return ok && st.IsValidator && slices.Contains(st.Signers, validatorAddr(t, d, "c"))
		})
	})

	t.Run("a fifth member is voted in and its validator signs", func(t *testing.T) {
		var progress syncBuffer
		ctx, cancel := context.WithTimeout(ctx, 2*JoinTimeout+time.Minute)
		defer cancel()
		joined := time.Now()
		if err := AddMember(ctx, d.Dir(), "e", "", &progress); err != nil {
			t.Fatalf("%v\nprogress:\n%s", err, progress.String())
		}
		t.Logf("e voted in and signing %.1fs after add-member; progress:\n%s", time.Since(joined).Seconds(), progress.String())
		for _, want := range []string{"member add e", "follows the final chain", "a proposes: consortium member propose add e",
			"b votes: consortium member vote", "c votes: consortium member vote", "fault tolerance: 4 validators, tolerates 1",
			"votes cast: a (proposer), b, c; the proposal passed at height", "e's validator is in the set from height", "e is a member"} {
			if !strings.Contains(progress.String(), want) {
				t.Errorf("progress lacks %q", want)
			}
		}
		if strings.Contains(progress.String(), "d votes") {
			t.Errorf("d voted on a proposal that three votes of four had decided")
		}
		// Every validator's CometBFT holds five validators, e among them.
		val := validatorAddr(t, d, "e")
		for _, v := range d.voters("e") {
			testutil.EventuallyTrue(t, 10*time.Second, v.spec.Label()+" does not hold 5 validators", func() bool {
				st, ok := v.consensusStatus()
				return ok && len(st.Powers) == 5 && st.Powers[val] > 0
			})
		}
		// e's validator proposes in turn, and signs.
		testutil.EventuallyTrue(t, time.Minute, "no block proposed by e", func() bool { return strings.Contains(out.String(), "proposed by e") })
		n := d.validatorOf("e")
		st, ok := n.consensusStatus()
		if !ok || !st.IsValidator || !slices.Contains(st.Signers, val) {
			t.Errorf("e/validator-1: running %v, validator %v, signers %v", ok, st.IsValidator, st.Signers)
		}
	})

	t.Run("no reorg in any geth log", func(t *testing.T) {
		logs, _ := filepath.Glob(filepath.Join(dir, "logs", "*-*.log"))
		for _, l := range logs {
			b, err := os.ReadFile(l)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "Chain reorg detected") {
				t.Errorf("%s says \"Chain reorg detected\"", filepath.Base(l))
			}
		}
	})

	t.Run("close leaves no process", func(t *testing.T) {
		var pids []int
		for _, n := range d.Nodes() {
			if n.PID != 0 {
				pids = append(pids, n.PID)
			}
		}
		if len(pids) != 15 {
			t.Errorf("%d geth processes running, want 15 (3 for each of a-e)", len(pids))
		}
		for _, n := range d.plain {
			if pid, up := n.running(); up {
				pids = append(pids, pid)
			}
		}
		closed = true
		stopping := time.Now()
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		t.Logf("Close took %.1fs; the whole test %.1fs", time.Since(stopping).Seconds(), time.Since(began).Seconds())
		for _, pid := range pids {
			if alive(pid) {
				t.Errorf("geth %d (or its process group) still runs after Close", pid)
			}
		}
	})
}

// validatorAddr is member's CometBFT validator address, as Status shows it.
func validatorAddr(t *testing.T, d *Devnet, member string) string {
	t.Helper()
	for _, m := range d.Manifest().Members {
		if m.Name == member && m.Validator != nil {
			return m.Validator.Address.String()
		}
	}
	t.Fatalf("no validator for %s", member)
	return ""
}

// hashesAt reads blocks 1..to at url in one batch.
func hashesAt(t *testing.T, url string, to uint64) []common.Hash {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := rpc.DialContext(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	batch := make([]rpc.BatchElem, to)
	for i := range batch {
		batch[i] = rpc.BatchElem{Method: "eth_getBlockByNumber", Args: []any{hexutil.EncodeUint64(uint64(i + 1)), false}, Result: new(header)}
	}
	if err := c.BatchCallContext(ctx, batch); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	out := make([]common.Hash, to)
	for i, b := range batch {
		if b.Error != nil {
			t.Fatalf("%s: block %d: %v", url, i+1, b.Error)
		}
		out[i] = b.Result.(*header).Hash
	}
	return out
}

// restartHead reads the log of geth's latest start: the head block it
// loaded from its database (its last "Loaded most recent local block"
// line) and geth's "Head state missing" line, if it had to rewind.
func restartHead(t *testing.T, logPath string) (loaded uint64, repaired string) {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if i := strings.LastIndex(text, "==== consortium devnet"); i >= 0 {
		text = text[i:]
	}
	found := false
	for line := range strings.SplitSeq(text, "\n") {
		if strings.Contains(line, "Head state missing") {
			repaired = strings.TrimSpace(line)
		}
		if !strings.Contains(line, "Loaded most recent local block") {
			continue
		}
		_, num, ok := strings.Cut(line, "number=")
		num, _, _ = strings.Cut(num, " ")
		v, err := strconv.ParseUint(strings.ReplaceAll(num, ",", ""), 10, 64)
		if !ok || err != nil {
			t.Fatalf("unreadable line in %s: %q", logPath, line)
		}
		loaded, found = v, true
	}
	if !found {
		t.Fatalf("%s: no \"Loaded most recent local block\" line since geth's last start", logPath)
	}
	return loaded, repaired
}
