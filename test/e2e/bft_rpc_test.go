//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common/hexutil"
)

// The suite reads every geth node's head, blocks and peers through one
// container, the probe (test/e2e/probe -serve), which has every node's
// data volume mounted and passes JSON-RPC to the node's IPC socket. Before
// it, each read was a `docker exec ... geth attach` (a JavaScript console
// started in the node's container): 23 s apiece on the loaded machine, so
// twelve at once missed their bounds while the chain ran fine.

// probeName is the probe's container; not a compose service, so compose
// never sees it, and removed before down.sh removes the volumes it mounts.
func probeName() string { return bftProject + "-rpc-probe" }

// buildProbe builds test/e2e/probe, static, into a directory to mount at
// /probe, and names the consortium image to run it in (it has no shell).
func (c *bftConsortium) buildProbe(t *testing.T) (dir, image string) {
	t.Helper()
	dir = t.TempDir()
	bin := filepath.Join(dir, "probe")
	if out, err := run(context.Background(), []string{"CGO_ENABLED=0"}, "go", "build", "-o", bin, filepath.Join(c.root, "test", "e2e", "probe")); err != nil {
		t.Fatalf("building the probe: %v %s", err, out)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	img, err := run(context.Background(), nil, filepath.Join(c.root, "deploy", "build-images.sh"), "--print")
	if err != nil {
		t.Fatal(err)
	}
	return dir, strings.Fields(img)[0]
}

// startProbe starts the probe with the twelve nodes' volumes and points
// c.rpcURL at its port on the host's loopback.
func (c *bftConsortium) startProbe(t *testing.T) {
	t.Helper()
	dir, image := c.buildProbe(t)
	removeProbe()
	// Root, for geth's sockets (mode 0600, owned by the containers' user).
	args := []string{"run", "-d", "--name", probeName(), "--user", "0:0", "-p", "127.0.0.1::8545", "-v", dir + ":/probe:ro"}
	for _, n := range c.nodes {
		vol, err := run(context.Background(), nil, "docker", "inspect", "-f",
			`{{range .Mounts}}{{if eq .Destination "/data"}}{{.Name}}{{end}}{{end}}`, c.mustContainer(t, n.name+"-geth"))
		if vol = strings.TrimSpace(vol); err != nil || vol == "" {
			t.Fatalf("%s-geth: no /data volume (%v)", n.name, err)
		}
		args = append(args, "-v", vol+":/ipc/"+n.name)
	}
	args = append(args, "--entrypoint", "/probe/probe", image, "-serve", "0.0.0.0:8545", "-ipc-dir", "/ipc")
	if out, err := run(context.Background(), nil, "docker", args...); err != nil {
		t.Fatalf("starting the probe: %v %s", err, out)
	}
	t.Cleanup(removeProbe) // before the teardown's down.sh: it holds the volumes
	port, err := run(context.Background(), nil, "docker", "port", probeName(), "8545/tcp")
	if err != nil {
		t.Fatalf("the probe's port: %v", err)
	}
	c.rpcURL = "http://" + strings.Fields(port)[0]
	t.Logf("RPC probe on %s for the 12 geth nodes", c.rpcURL)
}

func removeProbe() {
	run(context.Background(), nil, "docker", "rm", "-f", probeName())
}

type rpcReq struct {
	V      string `json:"jsonrpc"`
	ID     int    `json:"id"`
	Method string `json:"method"`
	Params []any  `json:"params"`
}

type rpcRes struct {
	ID     int             `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// post sends body to the node's socket through the probe.
func (c *bftConsortium) post(node string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	cl := &http.Client{Timeout: 60 * time.Second}
	res, err := cl.Post(c.rpcURL+"/"+node, "application/json", bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("%s: %v", node, err)
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	if err != nil {
		return fmt.Errorf("%s: %v", node, err)
	}
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", node, firstLine(string(rb)))
	}
	return json.Unmarshal(rb, out)
}

// call is one JSON-RPC call on a node.
func (c *bftConsortium) call(node string, out any, method string, params ...any) error {
	var r rpcRes
	if err := c.post(node, rpcReq{"2.0", 1, method, append([]any{}, params...)}, &r); err != nil {
		return err
	}
	if r.Error != nil {
		return fmt.Errorf("%s: %s: %s", node, method, r.Error.Message)
	}
	return json.Unmarshal(r.Result, out)
}

// rpcBlock is what the suite reads of a block.
type rpcBlock struct {
	Number hexutil.Uint64 `json:"number"`
	Hash   string         `json:"hash"`
	Time   hexutil.Uint64 `json:"timestamp"`
	Miner  string         `json:"miner"`
}

func (b *rpcBlock) block() block {
	return block{N: uint64(b.Number), Hash: b.Hash, Time: int64(b.Time), Miner: b.Miner}
}

// blockRange reads blocks from..to of a node, 200 to a batch, up to the
// first it does not have.
func (c *bftConsortium) blockRange(node string, from, to uint64) ([]block, error) {
	var out []block
	for lo := from; lo <= to; lo += 200 {
		hi := min(to, lo+199)
		var batch []rpcReq
		for n := lo; n <= hi; n++ {
			batch = append(batch, rpcReq{"2.0", int(n - lo), "eth_getBlockByNumber", []any{hexutil.EncodeUint64(n), false}})
		}
		var rs []rpcRes
		if err := c.post(node, batch, &rs); err != nil {
			return nil, err
		}
		got := make([]*rpcBlock, len(batch))
		for _, r := range rs {
			if r.Error != nil {
				return nil, fmt.Errorf("%s: eth_getBlockByNumber: %s", node, r.Error.Message)
			}
			if r.ID < 0 || r.ID >= len(got) {
				return nil, fmt.Errorf("%s: a reply to request %d of %d", node, r.ID, len(got))
			}
			if err := json.Unmarshal(r.Result, &got[r.ID]); err != nil {
				return nil, fmt.Errorf("%s: %v", node, err)
			}
		}
		for _, b := range got {
			if b == nil {
				return out, nil
			}
			out = append(out, b.block())
		}
	}
	return out, nil
}
