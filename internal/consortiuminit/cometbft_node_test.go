package consortiuminit

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/cometbft/cometbft/abci/example/kvstore"
	cmtcfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/proxy"
)

// TestCometBFTRunsWrittenHome starts a real CometBFT node, in this process,
// on the home Run wrote for a one-member consortium's validator, exactly as
// CometBFT finds its files there (genesis provider, node key, FilePV), and
// waits for it to commit blocks it proposed itself. The application is
// CometBFT's example kvstore: what is tested is the home, not our app.
func TestCometBFTRunsWrittenHome(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("runs a CometBFT node; skipped with -short")
	}
	res, err := Run(Config{
		Members:        []string{"acme"},
		Out:            filepath.Join(t.TempDir(), "net"),
		NodesPerMember: Roles{Validators: 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	v := res.Members[0].Nodes[0]
	cc := cmtcfg.DefaultConfig()
	cc.SetRoot(res.Path(v.CometHome))
	// Nothing listens beyond a kernel-chosen loopback P2P port.
	cc.P2P.ListenAddress = "tcp://127.0.0.1:0"
	cc.RPC.ListenAddress = ""
	cc.GRPC.ListenAddress = ""
	cc.RPC.PprofListenAddress = ""
	cc.Instrumentation.Prometheus = false
	cc.DBBackend = "memdb"
	cc.Consensus.TimeoutCommit = 50 * time.Millisecond //nolint:staticcheck // the v1.0 knob

	nodeKey, err := p2p.LoadNodeKey(cc.NodeKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	pv := loadFilePV(t, cc.PrivValidatorKeyFile(), cc.PrivValidatorStateFile())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := cmtnode.NewNode(ctx, cc, pv, nodeKey,
		proxy.NewLocalClientCreator(kvstore.NewInMemoryApplication()),
		cmtnode.DefaultGenesisDocProviderFunc(cc), cmtcfg.DefaultDBProvider,
		cmtnode.DefaultMetricsProvider(cc.Instrumentation), cmtlog.NewNopLogger())
	if err != nil {
		t.Fatalf("CometBFT refused the home: %v", err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := n.Stop(); err != nil {
			t.Error(err)
		}
		n.Wait()
	}()
	if string(n.NodeInfo().ID()) != v.CometNodeID {
		t.Errorf("CometBFT runs as %s, manifest says %s", n.NodeInfo().ID(), v.CometNodeID)
	}

	deadline := time.Now().Add(30 * time.Second)
	for n.BlockStore().Height() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("height %d after 30 s, want 3", n.BlockStore().Height())
		}
		time.Sleep(20 * time.Millisecond)
	}
	b, _ := n.BlockStore().LoadBlock(2)
	if b.ChainID != res.CometChainID || !bytes.Equal(b.ProposerAddress, res.Members[0].Validator.Address) {
		t.Errorf("block 2 of %q proposed by %X, want %q by acme's validator %s", b.ChainID, b.ProposerAddress, res.CometChainID, res.Members[0].Validator.Address)
	}
}
