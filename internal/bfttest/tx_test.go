package bfttest

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	gethclient "github.com/ethereum/go-ethereum/ethclient"
)

// memberKey decrypts member's fee-recipient account, funded in the genesis.
func (c *cluster) memberKey(member string) *ecdsa.PrivateKey {
	c.t.Helper()
	acct := c.member(member).FeeRecipient
	files, err := os.ReadDir(c.path(acct.Keystore))
	if err != nil || len(files) == 0 {
		c.t.Fatalf("keystore of %s: %v", member, err)
	}
	b, err := os.ReadFile(filepath.Join(c.path(acct.Keystore), files[0].Name()))
	if err != nil {
		c.t.Fatal(err)
	}
	k, err := keystore.DecryptKey(b, c.read(acct.Password))
	if err != nil {
		c.t.Fatal(err)
	}
	return k.PrivateKey
}

// finality watches every node's chain and records when each transaction
// first appears in a block on each node: a BFT block is final when geth
// has it, so the time a transaction is final everywhere is the latest of
// those.
type finality struct {
	mu   sync.Mutex
	seen map[common.Hash]map[string]time.Time // tx -> node -> first seen
	stop context.CancelFunc
	wg   sync.WaitGroup
}

func watchFinality(nodes []*node) *finality {
	ctx, cancel := context.WithCancel(context.Background())
	f := &finality{seen: map[common.Hash]map[string]time.Time{}, stop: cancel}
	for _, n := range nodes {
		f.wg.Go(func() {
			next, _ := n.head()
			next++
			for ctx.Err() == nil {
				h, err := n.head()
				for ; err == nil && next <= h; next++ {
					b, err := n.block(next)
					if err != nil {
						break
					}
					now := time.Now()
					f.mu.Lock()
					for _, tx := range b.TxHashes {
						if f.seen[tx] == nil {
							f.seen[tx] = map[string]time.Time{}
						}
						f.seen[tx][n.name] = now
					}
					f.mu.Unlock()
				}
				select {
				case <-ctx.Done():
				case <-time.After(20 * time.Millisecond):
				}
			}
		})
	}
	return f
}

// finalEverywhere is when tx was first seen on the last of n nodes.
func (f *finality) finalEverywhere(tx common.Hash, n int) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen[tx]) < n {
		return time.Time{}, false
	}
	var last time.Time
	for _, t := range f.seen[tx] {
		if t.After(last) {
			last = t
		}
	}
	return last, true
}

func (f *finality) close() {
	f.stop()
	f.wg.Wait()
}

// sendTransfers sends count transfers from key through n, one every gap,
// and returns each one's time from sending until it is in a block on
// every node of all.
func (c *cluster) sendTransfers(n *node, key *ecdsa.PrivateKey, count int, gap time.Duration, all []*node) []time.Duration {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ec, err := gethclient.DialContext(ctx, n.geth.RPCURL())
	if err != nil {
		c.t.Fatal(err)
	}
	defer ec.Close()
	chainID, err := ec.ChainID(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	from := ecdsaAddr(key)
	nonce, err := ec.PendingNonceAt(ctx, from)
	if err != nil {
		c.t.Fatal(err)
	}
	signer := types.LatestSignerForChainID(chainID)
	to := common.HexToAddress("0x00000000000000000000000000000000000c0ffe")
	f := watchFinality(all)
	defer f.close()
	sent := make([]time.Time, count)
	hashes := make([]common.Hash, count)
	for i := range count {
		tx, err := types.SignNewTx(key, signer, &types.DynamicFeeTx{
			ChainID: chainID, Nonce: nonce + uint64(i), GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9),
			Gas: 21000, To: &to, Value: big.NewInt(1),
		})
		if err != nil {
			c.t.Fatal(err)
		}
		sent[i], hashes[i] = time.Now(), tx.Hash()
		if err := ec.SendTransaction(ctx, tx); err != nil {
			c.t.Fatalf("sending transfer %d: %v", i, err)
		}
		time.Sleep(gap)
	}
	lat := make([]time.Duration, count)
	c.eventually(60*time.Second, fmt.Sprintf("%d transfers final on all %d nodes", count, len(all)), func() error {
		missing := 0
		for i, h := range hashes {
			if t, ok := f.finalEverywhere(h, len(all)); ok {
				lat[i] = t.Sub(sent[i])
			} else {
				missing++
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d not yet final everywhere", missing)
		}
		return nil
	})
	return lat
}

func ecdsaAddr(k *ecdsa.PrivateKey) common.Address { return crypto.PubkeyToAddress(k.PublicKey) }

// percentile of ds (sorted copy), p in [0,100].
func percentile(ds []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(s)-1))
	return s[i]
}
