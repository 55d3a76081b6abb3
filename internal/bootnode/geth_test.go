package bootnode_test

import (
	"context"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/bootnode"
	"github.com/consortium/consortium/internal/gethtest"
)

// Two real geth nodes given only our bootnode find and peer with each other:
// the inside-a-member path, with no registrar and no agent.
func TestGethNodesPeerThroughTheBootnodeAlone(t *testing.T) {
	for _, v := range []string{gethtest.V117, gethtest.V113} {
		t.Run(v, func(t *testing.T) {
			if testing.Short() {
				t.Skip("starts real geth processes")
			}
			gethtest.Binary(t, v)
			b, err := bootnode.New(bootnode.Config{ListenAddr: "127.0.0.1:0", DataDir: t.TempDir(), NoLivenessCheck: true})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := b.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			cfg := gethtest.Config{Version: v, Bootnodes: []string{b.Enode()}}
			n1 := gethtest.Start(t, cfg)
			n2 := gethtest.Start(t, cfg)
			start := time.Now()
			for {
				var peers []struct {
					ID string `json:"id"`
				}
				if err := n1.Call(&peers, "admin_peers"); err == nil {
					for _, p := range peers {
						if p.ID == n2.ID().String() {
							t.Logf("%s: two geth nodes peered through the bootnode %v after the second started", v, time.Since(start))
							return
						}
					}
				}
				if time.Since(start) > 60*time.Second {
					t.Fatal("the nodes did not find each other through the bootnode")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
