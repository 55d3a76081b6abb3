package agent_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/gethtest"
	"github.com/consortium/consortium/internal/testutil"
)

// recordingConsensus stands in for the consensus process (internal/
// consensus runs the real one): the peer sets the agent gives it are what
// is under test.
type recordingConsensus struct {
	id   string
	mu   sync.Mutex
	last []string
	n    int
}

func newRecordingConsensus(t *testing.T) *recordingConsensus {
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return &recordingConsensus{id: hex.EncodeToString(b)}
}

func (r *recordingConsensus) ID() string { return r.id }
func (r *recordingConsensus) SetPeers(addrs []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last, r.n = slices.Sorted(slices.Values(addrs)), r.n+1
	return nil
}

func (r *recordingConsensus) peers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last
}

// TestConsensusPeersFollowTheRegistrar is issue 17's item 3 on the agent's
// side, with a real registrar and real geth: each node's record carries its
// consensus endpoint, and each consensus process is given exactly the
// registrar's consensus list (the sentry pattern: a validator gets its
// member's nodes at their private endpoints, a public node also the other
// members' public nodes at their public endpoints), and follows it live
// when a node leaves.
func TestConsensusPeersFollowTheRegistrar(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real geth processes")
	}
	s := newSuite(t, gethtest.V117)
	alpha, beta := s.addMember("alpha"), s.addMember("beta")
	type cnode struct {
		n             *tnode
		c             *recordingConsensus
		port, pubPort int
	}
	start := func(m *member, name, role string, port, pubPort int) *cnode {
		c := &cnode{c: newRecordingConsensus(t), port: port, pubPort: pubPort}
		c.n = s.startNodeWith(m, name, role, gethtest.Config{}, func(cfg *agent.Config) {
			cfg.Consensus, cfg.ConsensusPort, cfg.PublicConsensusPort = c.c, port, pubPort
		})
		return c
	}
	val := start(alpha, "alpha-validator", "validator", 26001, 0)
	pub := start(alpha, "alpha-public", "public", 26002, 36002)
	other := start(beta, "beta-public", "public", 26003, 36003)
	s.waitMesh([]*tnode{val.n, pub.n, other.n}, 60*time.Second)

	addr := func(c *cnode, port int) string { return fmt.Sprintf("%s@127.0.0.1:%d", c.c.id, port) }
	want := map[*cnode][]string{
		val:   {addr(pub, pub.port)},
		pub:   {addr(val, val.port), addr(other, other.pubPort)},
		other: {addr(pub, pub.pubPort)},
	}
	check := func(what string) {
		t.Helper()
		for c, w := range want {
			w = slices.Sorted(slices.Values(w))
			testutil.EventuallyTrue(t, 10*time.Second, what+": "+c.n.name+"'s consensus peers", func() bool { return slices.Equal(c.c.peers(), w) })
		}
	}
	check("all three up")

	other.n.geth.Kill()
	other.n.stopAgent(t)
	want[pub] = []string{addr(val, val.port)}
	want[other] = other.c.peers() // no agent: nothing changes
	killed := time.Now()
	check("beta's public node gone")
	t.Logf("beta's public node left alpha-public's consensus peers %v after its kill (lease %v)", time.Since(killed).Round(100*time.Millisecond), testTTL)
}
