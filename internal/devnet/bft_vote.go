package devnet

import (
	"context"
	"encoding/base64"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/consortium/consortium/internal/consortiuminit"
)

// A member joins the validator set of a BFT devnet the way it joins a real
// one (issue 21): the validators vote. The devnet holds every member's keys,
// so it plays each existing member's operator in turn: the first running
// validator's member proposes "add <new member> with its validator key"
// (its signature counts as its vote), the others vote, each with its own
// validator key against its own consensus node's RPC, through the
// `consortium member propose|vote` commands themselves (Config.CLI), until
// the proposal is decided. CometBFT applies a passed change two heights
// after the deciding block; the new validator then signs.

// cliTimeout bounds one `consortium member` command: its own wait for the
// transaction to be in a block (--wait) and a little more.
const cliTimeout = 90 * time.Second

var proposalIDRE = regexp.MustCompile(`id ([0-9a-f]{64})`)
var decidedRE = regexp.MustCompile(`decided by height (\d+): (passed|dropped)`)

// rpcPort is a BFT validator's consensus RPC port: what `consortium member
// propose|vote --consensus-rpc` talks to.
func (e *env) rpcPort(s nodeSpec) int { return e.basePort + 4*portStride + s.Index }

// consensusRPC is the node's consensus RPC address, "" when it serves none.
func (n *gethNode) consensusRPC() string {
	if n.env.mode != BFT || n.spec.Role != consortiuminit.RoleValidator {
		return ""
	}
	return "127.0.0.1:" + strconv.Itoa(n.env.rpcPort(n.spec))
}

// voteIn runs the vote that makes mem's validator one of the set, and
// waits until it signs.
func (d *Devnet) voteIn(ctx context.Context, mem consortiuminit.Member, say func(string, ...any)) error {
	if mem.Validator == nil {
		return nil
	}
	if d.cfg.CLI == "" {
		return fmt.Errorf("%w (Config.CLI is empty)", ErrNoCLI)
	}
	voters := d.voters(mem.Name)
	if len(voters) == 0 {
		return fmt.Errorf("%w (no validator of another member runs)", ErrVote)
	}
	pub := base64.StdEncoding.EncodeToString(mem.Validator.PubKey)
	// The new member's nodes run already (they followed the chain first),
	// so its key counts as online in the fault-tolerance preview.
	out, err := d.memberCLI(ctx, voters[0], "propose", "add", mem.Name, "--pubkey", pub, "--new-key-online")
	say("%s proposes: consortium member propose add %s --pubkey %s --consensus-rpc %s --validator-key %s\n%s",
		voters[0].spec.Member, mem.Name, pub, voters[0].consensusRPC(), d.rel(voters[0].validatorKey()), indent(out))
	if err != nil {
		return fmt.Errorf("%w (%s's proposal: %v: %s)", ErrVote, voters[0].spec.Member, err, lastLine(out))
	}
	m := proposalIDRE.FindStringSubmatch(out)
	if m == nil {
		return fmt.Errorf("%w (no proposal id in the output of propose: %s)", ErrVote, lastLine(out))
	}
	id := m[1]
	cast := []string{voters[0].spec.Member + " (proposer)"}
	decided := decidedRE.FindStringSubmatch(out)
	for _, v := range voters[1:] {
		if decided != nil {
			break
		}
		out, err := d.memberCLI(ctx, v, "vote", id[:12], "--new-key-online")
		say("%s votes: consortium member vote %s --consensus-rpc %s --validator-key %s\n%s",
			v.spec.Member, id[:12], v.consensusRPC(), d.rel(v.validatorKey()), indent(out))
		if err != nil {
			return fmt.Errorf("%w (%s's vote: %v: %s)", ErrVote, v.spec.Member, err, lastLine(out))
		}
		cast = append(cast, v.spec.Member)
		decided = decidedRE.FindStringSubmatch(out)
	}
	if decided == nil {
		return fmt.Errorf("%w (votes of %s cast, the proposal is still open)", ErrVote, strings.Join(cast, ", "))
	}
	if decided[2] != "passed" {
		return fmt.Errorf("%w (the proposal was dropped at height %s)", ErrVote, decided[1])
	}
	at, _ := strconv.ParseInt(decided[1], 10, 64)
	votedAt := time.Now()
	say("votes cast: %s; the proposal passed at height %d", strings.Join(cast, ", "), at)

	ctx, cancel := context.WithTimeout(ctx, JoinTimeout)
	defer cancel()
	from, err := joinHeight(ctx, voters[0].consensusRPC(), mem.Validator.Address.String(), at)
	if err != nil {
		return fmt.Errorf("%w (%s's validator in no validator set after height %d: %v)", ErrVote, mem.Name, at, err)
	}
	val := d.validatorOf(mem.Name)
	addr := mem.Validator.Address.String()
	for {
		if st, ok := val.consensusStatus(); ok && slices.Contains(st.Signers, addr) {
			say("%s's validator is in the set from height %d and signs: its signature is in the commit of block %d, %.1fs after the deciding vote",
				mem.Name, from, st.Height-1, time.Since(votedAt).Seconds())
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%s's validator is in the set from height %d but has not signed a commit)", ErrVote, mem.Name, from)
		case <-time.After(pollEvery):
		}
	}
}

// voters are the running validator nodes of the members other than
// newcomer, in the consortium's order.
func (d *Devnet) voters(newcomer string) []*gethNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*gethNode
	for _, n := range d.nodes {
		if _, up := n.running(); up && n.spec.Member != newcomer && n.consensusRPC() != "" {
			out = append(out, n)
		}
	}
	return out
}

// validatorOf is member's validator node.
func (d *Devnet) validatorOf(member string) *gethNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.nodes {
		if n.spec.Member == member && n.spec.Role == consortiuminit.RoleValidator {
			return n
		}
	}
	return nil
}

// validatorKey is the member's validator key file, as init wrote it.
func (n *gethNode) validatorKey() string {
	return filepath.Join(n.env.path(n.spec.CometHome), "config", "priv_validator_key.json")
}

// memberCLI runs `consortium member SUB ARGS` as v's member's operator
// would: its own consensus RPC, its own validator key. A preview that
// counts a validator offline for one late precommit (the CLI reads the
// last commits) is asked again, a few times.
func (d *Devnet) memberCLI(ctx context.Context, v *gethNode, sub string, args ...string) (string, error) {
	all := append([]string{"member", sub}, args...)
	all = append(all, "--consensus-rpc", v.consensusRPC(), "--validator-key", v.validatorKey(), "--wait", "60s")
	var out []byte
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, cliTimeout)
		out, err = exec.CommandContext(cctx, d.cfg.CLI, all...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), "the chain would halt") || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	return strings.TrimSpace(string(out)), err
}

// joinHeight is the first height after decided whose validator set, at
// the consensus RPC rpc, holds addr.
func joinHeight(ctx context.Context, rpc, addr string, decided int64) (int64, error) {
	c, err := rpchttp.New("http://" + rpc)
	if err != nil {
		return 0, err
	}
	for h := decided; ; {
		vs, err := c.Validators(ctx, &h, nil, nil)
		if err == nil {
			for _, v := range vs.Validators {
				if v.Address.String() == addr {
					return h, nil
				}
			}
			h++
			continue
		}
		// Not that height yet.
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("%v (last asked: height %d)", err, h)
		case <-time.After(pollEvery):
		}
	}
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}
