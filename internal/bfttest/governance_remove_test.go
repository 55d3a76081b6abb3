package bfttest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cometbft/cometbft/privval"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"

	"github.com/consortium/consortium/internal/consortiuminit"
)

// TestGovernanceRemovesMember is issue 21's removal bar on real processes:
// four members, each a validator and a public node, and a registrar that
// follows the chain through the four validators' consensus RPC. The
// administrator cannot add a member by itself. a, b and c vote d out; then
// d's credential gets 401 revoked at the registrar, d's nodes leave every
// geth peer set within the lease (10 s) of the vote, by design: the agents
// keep a departed peer at most half their lease (reconcile.Timed), and the
// registrar drops a revoked member's nodes from its answers at once. The
// validator set is three on every
// node, and the chain goes on with d's processes stopped: d no longer
// counts towards commits.
func TestGovernanceRemovesMember(t *testing.T) {
	c, vals, pubs := startValidatorsAndPublics(t, true)
	c.waitHeight(c.running(), 3, 3*time.Minute)

	status, code := c.registrarCall(c.regAdmin, "POST", "/v1/members", `{"name":"x"}`)
	if status != http.StatusConflict || code != "chain_governed" {
		t.Fatalf("the administrator added a member of a BFT consortium: %d %s", status, code)
	}
	dCred := c.read(c.member("d").Credential)
	if status, code := c.registrarCall(dCred, "GET", "/v1/whoami", ""); status != 200 {
		t.Fatalf("d's credential before the vote: %d %s", status, code)
	}
	dIDs, dKeys := map[string]bool{}, []string{}
	for _, n := range c.member("d").Nodes {
		key, err := crypto.LoadECDSA(c.path(n.Nodekey))
		if err != nil {
			t.Fatal(err)
		}
		dIDs[enode.PubkeyToIDV4(&key.PublicKey).String()] = true
		dKeys = append(dKeys, fmt.Sprintf("%x", crypto.FromECDSAPub(&key.PublicKey)[1:]))
	}
	aCred := c.read(c.member("a").Credential)
	aPub := pubs["a"].id()
	// inAnswer: whether the registrar's answer for a's public node names
	// one of d's nodes.
	inAnswer := func() bool {
		body := c.registrarGet(aCred, "/v1/nodes/"+aPub+"/peers")
		for _, k := range dKeys {
			if strings.Contains(body, k) {
				return true
			}
		}
		return false
	}
	c.eventually(60*time.Second, "d's public node in a's public node's answer", func() error {
		if !inAnswer() {
			return fmt.Errorf("not yet")
		}
		return nil
	})
	// d's public node peers with the others' public nodes to begin with.
	c.eventually(60*time.Second, "a's public node peered with d's", func() error {
		return c.peersWith(pubs["a"], dIDs, true)
	})

	out := c.memberCLI(t, "a", vals["a"], "propose", "remove", "d")
	id := regexp.MustCompile(`id ([0-9a-f]{64})`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("no proposal id in:\n%s", out)
	}
	c.memberCLI(t, "b", vals["b"], "vote", id[1][:8])
	out = c.memberCLI(t, "c", vals["c"], "vote", id[1][:8])
	decided := time.Now()
	if !strings.Contains(out, "passed") {
		t.Errorf("third vote:\n%s", out)
	}

	c.eventually(30*time.Second, "d's credential revoked", func() error {
		if status, code := c.registrarCall(dCred, "GET", "/v1/whoami", ""); status != 401 || code != "revoked" {
			return fmt.Errorf("whoami as d: %d %s", status, code)
		}
		return nil
	})
	revoked := time.Since(decided)
	if inAnswer() {
		t.Fatal("d revoked, yet its public node is still in a's public node's answer")
	}
	var others []*node
	for _, n := range c.running() {
		if n.member != "d" {
			others = append(others, n)
		}
	}
	const lease = 10 * time.Second // the registrar's --ttl
	c.eventually(lease+30*time.Second, "d's nodes out of every peer set", func() error {
		for _, n := range others {
			if err := c.peersWith(n, dIDs, false); err != nil {
				return err
			}
		}
		return nil
	})
	unpeered := time.Since(decided)
	t.Logf("FIGURE the third vote to d's credential revoked and its nodes out of the registrar's answers: %v; to d's nodes out of every geth peer set (the agents' departure grace, half the lease, included): %v (lease %v, load %s)",
		revoked.Round(time.Millisecond), unpeered.Round(time.Millisecond), lease, loadavg())
	if unpeered > lease {
		t.Errorf("d's nodes left the peer sets %v after the vote; the lease is %v", unpeered, lease)
	}
	for _, n := range others {
		c.eventually(30*time.Second, n.name+" has 3 validators", func() error {
			if k, err := n.validatorCount(0); err != nil || k != 3 {
				return fmt.Errorf("%d validators (%v)", k, err)
			}
			return nil
		})
	}

	// d's processes stop; the three left commit blocks on their own.
	for _, n := range c.running() {
		if n.member == "d" {
			n.kill()
		}
	}
	from, err := minHead(others)
	if err != nil {
		t.Fatal(err)
	}
	took := c.waitHeight(others, from+5, 60*time.Second)
	t.Logf("FIGURE with d stopped, 5 blocks on a, b and c in %v (load %s)", took.Round(time.Millisecond), loadavg())
	top, _ := minHead(others)
	c.sameChain(others, 1, top)
}

// TestGovernanceRotatesValidatorKey is the rotation bar: b's validator key
// is rotated by a vote to a key held by another of b's nodes (its tx node,
// running as a full node). After the change the new key signs commits, the
// old key is no longer in the validator set, and b's old validator can be
// stopped: with it gone the chain goes on, the set still four.
func TestGovernanceRotatesValidatorKey(t *testing.T) {
	c, vals, _ := startValidatorsAndPublics(t, false)
	newKey, newAddr := c.newValidatorKey("b", consortiuminit.RoleTx)
	oldPV := privval.LoadFilePVEmptyState(filepath.Join(c.path(vals["b"].spec.CometHome), "config", "priv_validator_key.json"),
		filepath.Join(c.path(vals["b"].spec.CometHome), "data", "priv_validator_state.json"))
	oldAddr := strings.ToUpper(fmt.Sprintf("%x", oldPV.Key.PubKey.Address()))
	c.start("b", consortiuminit.RoleTx)
	c.waitHeight(c.running(), 3, 3*time.Minute)

	out := c.memberCLI(t, "b", vals["b"], "propose", "rotate", "b", "--pubkey", base64.StdEncoding.EncodeToString(newKey), "--new-key-online")
	id := regexp.MustCompile(`id ([0-9a-f]{64})`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("no proposal id in:\n%s", out)
	}
	c.memberCLI(t, "a", vals["a"], "vote", id[1][:8])
	c.memberCLI(t, "c", vals["c"], "vote", id[1][:8])
	decided := time.Now()
	c.eventually(60*time.Second, "b's new key signing", func() error {
		return c.signedRecently(vals["a"], newAddr)
	})
	t.Logf("FIGURE the third vote to b's new key's first signature in a commit: %v (load %s)", time.Since(decided).Round(time.Millisecond), loadavg())
	for _, n := range c.running() {
		c.eventually(30*time.Second, n.name+" has b's new key in place of its old", func() error {
			addrs, err := n.validatorAddrs()
			if err != nil {
				return err
			}
			if len(addrs) != 4 || !addrs[newAddr] || addrs[oldAddr] {
				return fmt.Errorf("validators %v; want 4 with b's new key %s and without its old %s", addrs, newAddr, oldAddr)
			}
			return nil
		})
	}

	// The old key no longer counts: b's old validator stops, and with the
	// other three and b's new key the chain goes on.
	vals["b"].kill()
	running := c.running()
	from, err := minHead(running)
	if err != nil {
		t.Fatal(err)
	}
	took := c.waitHeight(running, from+5, 60*time.Second)
	if err := c.signedRecently(vals["a"], newAddr); err != nil {
		t.Fatalf("after b's old validator stopped: %v", err)
	}
	t.Logf("FIGURE with b's old validator stopped, 5 blocks in %v (load %s)", took.Round(time.Millisecond), loadavg())
	top, _ := minHead(running)
	c.sameChain(running, 1, top)
}

// registrarCall makes one request to the registrar with cred and returns
// the status and the error body's code.
func (c *cluster) registrarCall(cred, method, path, body string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.regURL+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var eb struct {
		Code string `json:"code"`
	}
	json.Unmarshal(b, &eb)
	return resp.StatusCode, eb.Code
}

// peersWith checks whether n's geth is connected to any of ids (want
// true) or to none of them (want false).
func (c *cluster) peersWith(n *node, ids map[string]bool, want bool) error {
	var peers []struct {
		ID string `json:"id"`
	}
	if err := n.geth.Call(&peers, "admin_peers"); err != nil {
		return fmt.Errorf("%s: admin_peers: %v", n.name, err)
	}
	found := false
	for _, p := range peers {
		if ids[p.ID] {
			found = true
		}
	}
	if found != want {
		return fmt.Errorf("%s connected to one of %d nodes: %v, want %v", n.name, len(ids), found, want)
	}
	return nil
}

// registrarGet is the body of a GET with cred (empty on an error status).
func (c *cluster) registrarGet(cred, path string) string {
	req, err := http.NewRequest("GET", c.regURL+path, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return ""
	}
	return string(b)
}

// id is the node's devp2p node ID, hex.
func (n *node) id() string {
	key, err := crypto.LoadECDSA(n.c.path(n.spec.Nodekey))
	if err != nil {
		n.c.t.Fatal(err)
	}
	return enode.PubkeyToIDV4(&key.PublicKey).String()
}

// validatorAddrs is the latest validator set n's CometBFT has, by address.
func (n *node) validatorAddrs() (map[string]bool, error) {
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/validators?per_page=100", n.cmtRPC))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Result *struct {
			Validators []struct {
				Address string `json:"address"`
			} `json:"validators"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	if out.Result == nil {
		return nil, fmt.Errorf("%s: no validators in the answer", n.name)
	}
	addrs := map[string]bool{}
	for _, v := range out.Result.Validators {
		addrs[strings.ToUpper(v.Address)] = true
	}
	return addrs, nil
}
