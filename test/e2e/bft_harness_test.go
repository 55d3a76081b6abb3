//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// The BFT consortium of deploy/compose/docker-compose.bft.yml: four
// members, each geth v1.17.10 beside its consensus process (CometBFT in the
// agent), three registrars on etcd, Prometheus. A geth node is three
// containers in one network namespace: "a-validator" holds it, and
// "a-validator-geth" and "a-validator-agent" join it.

var (
	bftProject     = envOr("E2E_BFT_PROJECT", "consortium-e2e-bft")
	bftNetPrefix   = envOr("E2E_BFT_NET", "10.203")
	bftRegistrarPt = envOr("E2E_BFT_REGISTRAR_PORT", "29899")
	bftPromPt      = envOr("E2E_BFT_PROMETHEUS_PORT", "29090")
	bftCut         = envDuration("E2E_BFT_CUT", 60*time.Second)
	bftHalt        = envDuration("E2E_BFT_HALT", 30*time.Second)
	// The figures: blocks continue within bftContinue of a
	// validator's loss; a node back from a failure catches up within
	// bftCatch. The first is the chain's own timeouts (a missing proposer
	// costs timeout_propose, 2 s) and fails the test; the second depends on
	// the machine (a container restart, geth reopening its database) and is
	// reported against the target, failing only beyond bftCatchBound.
	bftContinue   = envDuration("E2E_BFT_CONTINUE", 5*time.Second)
	bftCatch      = envDuration("E2E_BFT_CATCHUP_TARGET", 10*time.Second)
	bftCatchBound = envDuration("E2E_BFT_CATCHUP_BOUND", 90*time.Second)
)

var bftMembers = []string{"a", "b", "c", "d"}

// bftManifest is the part of a BFT consortium.json the suite reads.
type bftManifest struct {
	ChainID uint64 `json:"chain_id"`
	Members []struct {
		Name         string `json:"name"`
		Credential   string `json:"credential_file"`
		FeeRecipient struct {
			Address  string `json:"address"`
			Keystore string `json:"keystore_dir"`
			Password string `json:"password_file"`
		} `json:"fee_recipient"`
		Nodes []struct {
			Name   string `json:"name"`
			Role   string `json:"role"`
			ID     string `json:"id"`
			Pubkey string `json:"enode_pubkey"`
		} `json:"nodes"`
	} `json:"members"`
}

type bftNode struct {
	member, role string
	name         string // the pod: "a-validator"; its containers add -geth, -agent
	id           string
	ip           string
}

// bftConsortium is a running BFT compose consortium.
type bftConsortium struct {
	*suite
	man   bftManifest
	nodes []*bftNode // the twelve geth nodes, sorted by name
	byID  map[string]*bftNode
	fee   map[string]string // lower-case fee recipient -> member
	prom  string
	// rpcURL is the probe's (bft_rpc_test.go): JSON-RPC to every node.
	rpcURL string
	// plain are the node IDs of the members' plain geth nodes (m-plain),
	// by member, read once (plainID).
	plainMu sync.Mutex
	plain   map[string]string
}

// plainID is the node ID of member's plain geth node, "" while it cannot
// be read. m-plain-register keeps its record leased, so it is a peer of
// its member's nodes: the mesh check allows it there, and requires it
// nowhere (bft_plain_test.go checks it).
func (c *bftConsortium) plainID(member string) string {
	c.plainMu.Lock()
	defer c.plainMu.Unlock()
	if id, ok := c.plain[member]; ok {
		return id
	}
	var id string
	if err := c.jsService(member+"-plain", "admin.nodeInfo.id", &id); err != nil || id == "" {
		return ""
	}
	if c.plain == nil {
		c.plain = map[string]string{}
	}
	c.plain[member] = id
	return id
}

// startBFT builds the images, brings the BFT consortium up with up.sh and
// registers its teardown.
func startBFT(t *testing.T) (*bftConsortium, time.Time) {
	for _, tool := range []string{"docker", "jq", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed: %v", tool, err)
		}
	}
	c := &bftConsortium{suite: &suite{root: repoRoot(t), dir: t.TempDir(), compose: composeCommand(), project: bftProject, title: "measurement (BFT)"},
		prom: "http://127.0.0.1:" + bftPromPt}
	// COMPOSE_HTTP_TIMEOUT: see start's (harness_test.go).
	c.env = []string{
		"CONSENSUS=bft", "COMPOSE_HTTP_TIMEOUT=600", "CONSORTIUM_DIR=" + c.dir, "COMPOSE_PROJECT_NAME=" + bftProject, "NET=" + bftNetPrefix,
		"REGISTRAR_PORT=" + bftRegistrarPt, "PROMETHEUS_PORT=" + bftPromPt, "TTL=" + ttl.String(),
	}
	removeProbe() // a run killed before its cleanup: it would hold volumes down.sh removes
	up := c.bringUp(t, c.dumpLogs, "bft", "four members, 79 services")
	c.load(t)
	c.startProbe(t)
	return c, up
}

func (c *bftConsortium) load(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(c.dir, "consortium.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &c.man); err != nil {
		t.Fatal(err)
	}
	octet := map[string]int{"validator": 11, "tx": 12, "public": 13}
	c.byID, c.fee = map[string]*bftNode{}, map[string]string{}
	for i, m := range c.man.Members {
		c.fee[strings.ToLower(m.FeeRecipient.Address)] = m.Name
		for _, n := range m.Nodes {
			if n.Role == "bootnode" || !strings.HasSuffix(n.Name, "-1") {
				continue
			}
			nd := &bftNode{member: m.Name, role: n.Role, name: m.Name + "-" + n.Role, id: n.ID,
				ip: fmt.Sprintf("%s.%d.%d", bftNetPrefix, i+1, octet[n.Role])}
			c.nodes = append(c.nodes, nd)
			c.byID[nd.id] = nd
		}
	}
	sort.Slice(c.nodes, func(i, j int) bool { return c.nodes[i].name < c.nodes[j].name })
	if len(c.nodes) != 12 {
		t.Fatalf("consortium.json names %d geth nodes, want 12", len(c.nodes))
	}
}

func (c *bftConsortium) node(name string) *bftNode {
	for _, n := range c.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

func (c *bftConsortium) dumpLogs(t *testing.T) {
	for _, n := range c.nodes {
		for _, suffix := range []string{"-agent", "-geth"} {
			id, err := projectContainer(bftProject, n.name+suffix)
			if err != nil {
				continue
			}
			out, _ := run(context.Background(), nil, "docker", "logs", "--timestamps", "--tail", "30", id)
			t.Logf("--- last log lines of %s%s:\n%s", n.name, suffix, out)
		}
	}
}

// projectContainer finds the container of a service of a project.
func projectContainer(project, service string) (string, error) {
	out, err := run(context.Background(), nil, "docker", "ps", "-aq",
		"--filter", "label=com.docker.compose.project="+project,
		"--filter", "label=com.docker.compose.service="+service)
	if err != nil {
		return "", err
	}
	ids := strings.Fields(out)
	if len(ids) == 0 {
		return "", fmt.Errorf("no container for service %s", service)
	}
	return ids[0], nil
}

func (c *bftConsortium) mustContainer(t *testing.T, svc string) string {
	t.Helper()
	id, err := projectContainer(bftProject, svc)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (c *bftConsortium) network(t *testing.T, name string) string {
	t.Helper()
	out, err := run(context.Background(), nil, "docker", "network", "ls", "-q",
		"--filter", "label=com.docker.compose.project="+bftProject, "--filter", "label=com.docker.compose.network="+name)
	if err != nil || len(strings.Fields(out)) != 1 {
		t.Fatalf("network %s: %q %v", name, out, err)
	}
	return strings.Fields(out)[0]
}

func docker(t *testing.T, args ...string) {
	t.Helper()
	if _, err := run(context.Background(), nil, "docker", args...); err != nil {
		t.Fatal(err)
	}
}

func (c *bftConsortium) js(node, expr string, v any) error {
	return c.jsWithin(node, expr, v, 30*time.Second)
}

// jsWithin is js with its own bound, for the long reads (every block of
// the chain), which on the loaded shared machine took over 30 s.
func (c *bftConsortium) jsWithin(node, expr string, v any, bound time.Duration) error {
	id, err := projectContainer(bftProject, node+"-geth")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	out, err := run(ctx, nil, "docker", "exec", id, "geth", "attach", "--exec", "JSON.stringify("+expr+")", "/data/geth.ipc")
	if err != nil {
		return err
	}
	return decodeConsole(node, out, v)
}

// decodeConsole decodes what a geth console printed for JSON.stringify(x).
func decodeConsole(node, out string, v any) error {
	out = strings.TrimSpace(out)
	var s string
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		return fmt.Errorf("%s: geth console said %q", node, lastLines(out, 3))
	}
	return json.Unmarshal([]byte(s), v)
}

// block is one execution-layer block: on the BFT chain one per final
// CometBFT height, its fee recipient the proposer's member.
type block struct {
	N     uint64 `json:"n"`
	Hash  string `json:"h"`
	Time  int64  `json:"t"`
	Miner string `json:"m"`
}

func (c *bftConsortium) head(node string) (block, error) {
	var b *rpcBlock
	if err := c.call(node, &b, "eth_getBlockByNumber", "latest", false); err != nil {
		return block{}, err
	}
	if b == nil {
		return block{}, fmt.Errorf("%s: no head block", node)
	}
	return b.block(), nil
}

// blocks reads the blocks from..to (to 0: the head) of a node.
func (c *bftConsortium) blocks(node string, from, to uint64) ([]block, error) {
	if to == 0 {
		var n hexutil.Uint64
		if err := c.call(node, &n, "eth_blockNumber"); err != nil {
			return nil, err
		}
		to = uint64(n)
	}
	return c.blockRange(node, from, to)
}

// heads reads every geth node's head at once.
func (c *bftConsortium) heads() map[string]block {
	out := map[string]block{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := c.head(n.name)
			if err != nil {
				return
			}
			mu.Lock()
			out[n.name] = b
			mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// peers is a node's devp2p peers' node IDs.
func (c *bftConsortium) peers(node string) ([]string, error) {
	var ps []struct {
		ID string `json:"id"`
	}
	if err := c.call(node, &ps, "admin_peers"); err != nil {
		return nil, err
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids, nil
}

// expectedPeers: a node's member's other nodes, and for a public node the
// other members' public nodes, as in the Clique consortium; the consensus
// peers follow the same set.
func (c *bftConsortium) expectedPeers(n *bftNode) map[string]bool {
	want := map[string]bool{}
	for _, o := range c.nodes {
		switch {
		case o == n:
		case o.member == n.member, n.role == "public" && o.role == "public":
			want[o.id] = true
		}
	}
	return want
}

func (c *bftConsortium) meshGaps() []string {
	var gaps []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var g []string
			ids, err := c.peers(n.name)
			if err != nil {
				g = append(g, n.name+": "+firstLine(err.Error()))
			} else {
				want, have := c.expectedPeers(n), map[string]bool{}
				for _, id := range ids {
					have[id] = true
					if !want[id] && id != c.plainID(n.member) {
						g = append(g, fmt.Sprintf("%s: unexpected peer %s", n.name, c.nameOf(id)))
					}
				}
				for id := range want {
					if !have[id] {
						g = append(g, fmt.Sprintf("%s: missing %s", n.name, c.nameOf(id)))
					}
				}
			}
			mu.Lock()
			gaps = append(gaps, g...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	sort.Strings(gaps)
	return gaps
}

func (c *bftConsortium) nameOf(id string) string {
	if n, ok := c.byID[id]; ok {
		return n.name
	}
	if len(id) > 16 {
		return id[:16]
	}
	return id
}

// promQuery runs an instant query on the compose Prometheus.
func (c *bftConsortium) promQuery(q string) ([]struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}, error) {
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
		Error string `json:"error"`
	}
	if err := c.promGet("/api/v1/query?query="+url.QueryEscape(q), &r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, r.Error)
	}
	return r.Data.Result, nil
}

func (c *bftConsortium) promGet(path string, v any) error {
	cl := &http.Client{Timeout: 10 * time.Second}
	res, err := cl.Get(c.prom + path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != 200 {
		return fmt.Errorf("GET %s: %d %.200s", path, res.StatusCode, b)
	}
	return json.Unmarshal(b, v)
}

// oneHashPerHeight reads the blocks 1..upto of every geth node and fails
// when two nodes hold different blocks at one height.
func (c *bftConsortium) oneHashPerHeight(t *testing.T, upto uint64) int {
	t.Helper()
	byHeight := map[uint64]map[string][]string{} // height -> hash -> nodes
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, 4) // each node answers batches of 200 blocks: a few at a time
	for _, n := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			bs, err := c.blocks(n.name, 1, upto)
			if err != nil {
				t.Errorf("%s: %v", n.name, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, b := range bs {
				if byHeight[b.N] == nil {
					byHeight[b.N] = map[string][]string{}
				}
				byHeight[b.N][b.Hash] = append(byHeight[b.N][b.Hash], n.name)
			}
		}()
	}
	wg.Wait()
	for h, hashes := range byHeight {
		if len(hashes) > 1 {
			t.Errorf("height %d has %d different blocks: %v", h, len(hashes), hashes)
		}
	}
	return len(byHeight)
}

// longestGap is the longest interval between consecutive blocks (their
// timestamps, whole seconds) among bs from the first at or after since.
func longestGap(bs []block, since time.Time) (time.Duration, uint64) {
	var gap int64
	var at uint64
	for i := 1; i < len(bs); i++ {
		if bs[i].Time < since.Unix() {
			continue
		}
		prev := max(bs[i-1].Time, since.Unix())
		if d := bs[i].Time - prev; d > gap {
			gap, at = d, bs[i].N
		}
	}
	return time.Duration(gap) * time.Second, at
}

// recentBlocks reads a node's last n blocks (fewer on a young chain).
func (c *bftConsortium) recentBlocks(t *testing.T, node string, n uint64) []block {
	t.Helper()
	h, err := c.head(node)
	if err != nil {
		t.Fatal(err)
	}
	from := uint64(1)
	if h.N > n {
		from = h.N - n
	}
	bs, err := c.blocks(node, from, h.N)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

// firstAfter is how long after since the first block stamped in a later
// second came (a block of since's own second may be older than it), and
// how many such blocks there are; -1 without one.
func firstAfter(bs []block, since time.Time) (time.Duration, int) {
	var first time.Duration = -1
	made := 0
	for _, b := range bs {
		if b.Time <= since.Unix() {
			continue
		}
		made++
		if first < 0 {
			first = time.Unix(b.Time, 0).Sub(since)
		}
	}
	return first, made
}
