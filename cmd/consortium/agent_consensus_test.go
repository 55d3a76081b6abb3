package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestAgentRunWithConsensus runs `consortium agent run --consensus-home` for
// a BFT member of two nodes (its validator and a tx node) beside real geth
// 1.17 processes and a real registrar. The tx node's geth gets blocks only
// from its consensus process, and that process knows the validator only
// from the peers the agent gives it: the tx node's head moving proves the
// records carry the consensus endpoints and the agent hands the
// registrar's consensus list on.
func TestAgentRunWithConsensus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real geth processes")
	}
	gethtest.Binary(t, gethtest.V117)
	res, err := consortiuminit.Run(consortiuminit.Config{Members: []string{"acme"}, Out: t.TempDir(),
		NodesPerMember: consortiuminit.Roles{Validators: 1, Tx: 1}})
	if err != nil {
		t.Fatal(err)
	}
	regAddr := freePort(t)
	startProc(t, "registrar", "--listen", regAddr, "--data", t.TempDir(), "--seed", res.Path(res.Seed), "--allow-loopback-endpoints")
	regURL := "http://" + regAddr
	waitReady(t, regURL, nil)
	genesis, err := os.ReadFile(res.Path(res.Genesis))
	if err != nil {
		t.Fatal(err)
	}
	m := res.Members[0]
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	type running struct {
		name, cmtID, cmtAddr string
		geth                 *gethtest.Node
		logs                 *syncBuf
	}
	var nodes []*running
	for _, n := range m.Nodes {
		key, err := crypto.LoadECDSA(res.Path(n.Nodekey))
		if err != nil {
			t.Fatal(err)
		}
		g := gethtest.Start(t, gethtest.Config{Genesis: genesis, NodeKey: key, ExtraArgs: []string{"--authrpc.jwtsecret", res.Path(n.JWTSecret)}})
		cmtAddr := freePort(t)
		r := &running{name: n.Name, cmtID: n.CometNodeID, cmtAddr: cmtAddr, geth: g, logs: &syncBuf{}}
		nodes = append(nodes, r)
		args := []string{"agent", "run", "--registrar", regURL, "--credential-file", res.Path(m.Credential),
			"--rpc", g.IPCPath(), "--role", string(n.Role), "--nodekey", res.Path(n.Nodekey), "--state-dir", t.TempDir(),
			"--listen", "", "--log-level", "debug",
			"--consensus-home", res.Path(n.CometHome), "--consensus-p2p", cmtAddr,
			"--engine", "http://127.0.0.1:" + strconv.Itoa(g.AuthRPCPort()), "--jwt-secret", res.Path(n.JWTSecret),
			"--fee-recipient", m.FeeRecipient.Address.Hex()}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := &env{stdout: io.Discard, stderr: r.logs, getenv: func(string) string { return "" }}
			if err := run(ctx, e, args); err != nil {
				t.Errorf("agent run %s: %v", r.name, err)
			}
		}()
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, r := range nodes {
				out := r.logs.String()
				if len(out) > 20000 {
					out = out[len(out)-20000:]
				}
				t.Logf("agent %s:\n%s", r.name, out)
			}
		}
	})
	headOf := func(g *gethtest.Node) uint64 {
		var h hexutil.Uint64
		if g.Call(&h, "eth_blockNumber") != nil {
			return 0
		}
		return uint64(h)
	}
	start := time.Now()
	for _, r := range nodes {
		for headOf(r.geth) < 3 {
			if time.Since(start) > 90*time.Second {
				t.Fatalf("%s's geth at block %d after %v", r.name, headOf(r.geth), time.Since(start))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("both geths past block 3 %v after the agents started", time.Since(start).Round(100*time.Millisecond))

	// The registrar's answer names each node's consensus endpoint.
	cred, err := os.ReadFile(res.Path(m.Credential))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := registrarclient.New(registrarclient.Config{URL: regURL, Credential: strings.TrimSpace(string(cred))})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range nodes {
		other := nodes[1-i]
		p, err := rc.Peers(context.Background(), r.geth.ID().String())
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf("%s@%s", other.cmtID, other.cmtAddr)
		if !slices.Contains(p.Consensus, want) {
			t.Errorf("%s's answer: consensus %q, want it to hold %s", r.name, p.Consensus, want)
		}
		if !strings.Contains(r.logs.String(), "consensus peers set") {
			t.Errorf("%s's agent never set the consensus peers", r.name)
		}
	}
}
