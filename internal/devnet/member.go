package devnet

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/consortium/consortium/internal/registry"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
)

// joinPath is the devnet's own endpoint on its registrar, for AddMember
// from another process. Administrator only.
const joinPath = "POST /devnet/v1/members"

// JoinTimeout bounds the wait for a new member's signer to be voted in and
// to seal its first block.
var JoinTimeout = 3 * time.Minute

type joinRequest struct {
	Name  string `json:"name"`
	Nodes string `json:"nodes,omitempty"` // a --nodes spec without a member
}

// AddMember asks the devnet running on dir to add a member, and copies its
// progress lines to out until the new member's signer has sealed a block.
// nodes is a --nodes spec for the new member ("" for the default roles).
func AddMember(ctx context.Context, dir, name, nodes string, out io.Writer) error {
	st, err := ReadState(dir)
	if err != nil {
		return err
	}
	if st.PID == 0 || st.Registrar == "" {
		return fmt.Errorf("%w (%s)", ErrNotRunning, dir)
	}
	cred, err := os.ReadFile(st.AdminCredential)
	if err != nil {
		return fmt.Errorf("reading the administrator credential: %w", err)
	}
	body, _ := json.Marshal(joinRequest{Name: name, Nodes: nodes})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.Registrar+"/devnet/v1/members", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(cred)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w (%s: %v)", ErrNotRunning, st.Registrar, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	last := ""
	for sc.Scan() {
		last = sc.Text()
		if strings.HasPrefix(last, "error: ") || last == "done" {
			break
		}
		fmt.Fprintln(out, last)
	}
	switch {
	case last == "done":
		return nil
	case strings.HasPrefix(last, "error: "):
		return errors.New(strings.TrimPrefix(last, "error: "))
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("the devnet refused: HTTP %d %s", resp.StatusCode, last)
	}
	return fmt.Errorf("the devnet stopped answering before the member joined (%v)", sc.Err())
}

// serveJoin is AddMember's far end: it runs the join and streams its lines.
func (d *Devnet) serveJoin(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	p, err := d.reg.reg.Authenticate(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	if err != nil || !p.Admin {
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprintln(w, "error: the administrator's credential is required (registrar/admin.credential)")
		return
	}
	var req joinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&req); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "error: bad request: %v\n", err)
		return
	}
	roles := consortiuminit.DefaultRoles
	if req.Nodes != "" {
		n, err := ParseNodes([]string{req.Nodes})
		if err != nil {
			fmt.Fprintf(w, "error: %v\n", err)
			return
		}
		roles = n.For(req.Name)
	}
	lw := &flushWriter{w: w}
	lw.f, _ = w.(http.Flusher)
	// The join goes on if the caller goes away: it is the devnet's now.
	if err := d.AddMember(d.lifetime(), req.Name, roles, lw); err != nil {
		fmt.Fprintf(lw, "error: %v\n", err)
		return
	}
	fmt.Fprintln(lw, "done")
}

type flushWriter struct {
	w io.Writer
	f http.Flusher
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if f.f != nil {
		f.f.Flush()
	}
	return n, err
}

// AddMember adds a member to the running devnet the way a real consortium
// would: the administrator adds it at the registrar (its credential), it
// makes its keys, and its nodes start. On a Clique chain every existing
// signer votes its signer in with clique_propose first, and AddMember
// returns when the new signer's first block is seen. On a BFT chain its
// nodes start as CometBFT full nodes and catch up with the chain; then the
// existing validators vote its validator into the set on chain (issue 21:
// one proposes, the others vote, with `consortium member propose|vote`),
// and AddMember returns once it signs. progress gets one line per step.
func (d *Devnet) AddMember(ctx context.Context, name string, roles Roles, progress io.Writer) error {
	d.addMu.Lock()
	defer d.addMu.Unlock()
	if auth.ValidName(name) != nil {
		return fmt.Errorf("%w (got %q)", consortiuminit.ErrBadMember, name)
	}
	if roles == (Roles{}) {
		roles = consortiuminit.DefaultRoles
	}
	if err := checkRoles(d.cfg.Consensus, name, roles, 2); err != nil {
		return err
	}
	if slices.Contains(memberNames(d.Manifest().Members), name) {
		return fmt.Errorf("%w (%s)", ErrMemberExists, name)
	}
	say := func(format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		d.out.printf("join %s: %s", name, line)
		fmt.Fprintln(progress, line)
	}

	cred, err := d.reg.reg.AddMember(ctx, admin, name)
	if errors.Is(err, registry.ErrMemberExists) {
		return fmt.Errorf("%w (%s is a member at the registrar)", ErrMemberExists, name)
	}
	if err != nil {
		return fmt.Errorf("member add %s: %w", name, err)
	}
	say("member add %s: the registrar issued its credential", name)

	mem, err := d.makeMember(name, roles, cred.String())
	if err != nil {
		return err
	}
	var signers []common.Address
	for _, n := range mem.Nodes {
		if n.Signer != nil {
			signers = append(signers, *n.Signer)
		}
	}
	if d.cfg.Consensus == BFT {
		say("made %d node keys and CometBFT homes (with the consortium's CometBFT genesis) in %s", len(mem.Nodes), d.rel(filepath.Join(d.dir, consortiuminit.MembersDir, name)))
	} else {
		say("made %d node keys and signer account(s) %s in %s", len(mem.Nodes), addrs(signers), d.rel(filepath.Join(d.dir, consortiuminit.MembersDir, name)))
	}

	d.mu.Lock()
	var specs []nodeSpec
	for _, n := range mem.Nodes {
		specs = append(specs, nodeSpec{Member: name, Node: n, Index: len(d.all) + len(specs), FeeRecipient: feeOf(*mem)})
	}
	d.added = append(d.added, *mem)
	d.all = append(d.all, specs...)
	d.mu.Unlock()
	if err := d.saveState(); err != nil {
		return err
	}
	// Before the votes: a signer voted in whose node cannot start would
	// count against the majority Clique needs.
	if err := checkPorts(d.env, specs); err != nil {
		return err
	}
	if d.cfg.Consensus == BFT {
		if err := d.followBFT(ctx, name, specs, say); err != nil {
			return err
		}
		if err := d.voteIn(ctx, *mem, say); err != nil {
			return err
		}
		say("%s is a member: its validator signs blocks", name)
		return nil
	}

	voters := d.signerNodes()
	for _, s := range signers {
		for _, v := range voters {
			if err := propose(ctx, v.RPCURL(), s, true); err != nil {
				return fmt.Errorf("%s: clique_propose: %w", v.spec.Label(), err)
			}
			say("%s votes %s in: clique_propose(%s, true) at %s", v.spec.Label(), name, s.Hex(), v.RPCURL())
		}
	}
	if err := d.startNodes(ctx, specs); err != nil {
		return err
	}
	if err := d.saveState(); err != nil {
		return err
	}
	say("started %d nodes of %s; waiting for the votes to be sealed", len(specs), name)

	ctx, cancel := context.WithTimeout(ctx, JoinTimeout)
	defer cancel()
	if err := d.waitSigners(ctx, voters, signers); err != nil {
		return err
	}
	say("%s is a Clique signer now", addrs(signers))
	for ctx.Err() == nil {
		if _, ok := d.Stats().FirstBlock[name]; ok {
			say("%s sealed its first block; it is a full member", name)
			// The votes are spent; withdrawing them is tidy, not
			// required. Only now: a vote withdrawn while the block
			// that counted it can still be reorganised away would
			// leave the new signer short of a majority for good.
			for _, v := range voters {
				for _, s := range signers {
					discard(ctx, v.RPCURL(), s)
				}
			}
			return nil
		}
		time.Sleep(pollEvery)
	}
	return fmt.Errorf("%w (%s; %s)", ErrJoinTimeout, name, d.sealDiagnosis(signers))
}

// sealDiagnosis says, for a join that timed out, where each new signer's
// node stands: what an operator (and a CI log) needs to tell "not voted in
// on its own chain", "behind the others", "miner not running" and "no
// peers" apart.
func (d *Devnet) sealDiagnosis(signers []common.Address) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	best := d.Stats().Head
	var parts []string
	d.mu.Lock()
	nodes := d.nodes
	d.mu.Unlock()
	for _, n := range nodes {
		if n.spec.Signer == nil || !slices.Contains(signers, *n.spec.Signer) {
			continue
		}
		var (
			head    hexutil.Uint64
			mining  bool
			peers   []struct{}
			signing []common.Address
		)
		errHead := callIPC(ctx, n.ipcPath, &head, "eth_blockNumber")
		errMining := callIPC(ctx, n.ipcPath, &mining, "eth_mining")
		errPeers := callIPC(ctx, n.ipcPath, &peers, "admin_peers")
		errSigners := callIPC(ctx, n.ipcPath, &signing, "clique_getSigners")
		if err := errors.Join(errHead, errMining, errPeers, errSigners); err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", n.spec.Label(), err))
			continue
		}
		_, sealing := n.sealState()
		parts = append(parts, fmt.Sprintf("%s: head %d of %d, %d peers, miner_start called %v, eth_mining %v, a signer at its head %v",
			n.spec.Label(), head, best, len(peers), sealing, mining, slices.Contains(signing, *n.spec.Signer)))
	}
	return strings.Join(parts, "; ")
}

// lifetime is a context that ends when the devnet closes.
func (d *Devnet) lifetime() context.Context { return d.ctx }

// makeMember makes the new member's keys with init's own code (into a
// scratch directory, whose member directory is moved into place) and
// stores the credential the registrar issued.
func (d *Devnet) makeMember(name string, roles Roles, cred string) (*consortiuminit.Member, error) {
	scratch, err := os.MkdirTemp(d.dir, ".join-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(scratch)
	m := d.Manifest()
	res, err := consortiuminit.Run(consortiuminit.Config{
		Consensus: d.cfg.Consensus, Members: []string{name}, Out: scratch, NodesPerMember: roles, ChainID: m.ChainID, Period: m.Period,
	})
	if err != nil {
		return nil, err
	}
	mem := res.Members[0]
	dst := filepath.Join(d.dir, consortiuminit.MembersDir, name)
	if err := os.Rename(filepath.Join(scratch, consortiuminit.MembersDir, name), dst); err != nil {
		return nil, err
	}
	if d.cfg.Consensus == BFT {
		// init made a CometBFT chain of the new member alone; its nodes
		// join the consortium's, whose validator set it is not in yet.
		if err := d.useCometGenesis(mem); err != nil {
			return nil, err
		}
	}
	// init's credential was for a registrar seeded from its scratch
	// directory; the one that counts is the one the registrar issued.
	credPath := filepath.Join(d.dir, filepath.FromSlash(mem.Credential))
	if err := os.WriteFile(credPath, []byte(cred+"\n"), 0o600); err != nil {
		return nil, err
	}
	return &mem, nil
}

// signerNodes are the running validators.
func (d *Devnet) signerNodes() []*gethNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*gethNode
	for _, n := range d.nodes {
		if _, up := n.running(); up && n.spec.Signer != nil {
			out = append(out, n)
		}
	}
	return out
}

// waitSigners waits until every voter that answers lists every one of want
// in clique_getSigners at its head. One voter's head may be a block that
// the chain then drops; all of them agreeing is much harder to undo.
func (d *Devnet) waitSigners(ctx context.Context, voters []*gethNode, want []common.Address) error {
	for {
		answered, agree := 0, 0
		for _, v := range voters {
			var have []common.Address
			if err := callIPC(ctx, v.ipcPath, &have, "clique_getSigners"); err != nil {
				continue
			}
			answered++
			ok := true
			for _, s := range want {
				ok = ok && slices.Contains(have, s)
			}
			if ok {
				agree++
			}
		}
		if answered > 0 && agree == answered {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (votes for %s not sealed)", ErrJoinTimeout, addrs(want))
		case <-time.After(pollEvery):
		}
	}
}

func propose(ctx context.Context, url string, addr common.Address, auth bool) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := rpc.DialContext(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.CallContext(ctx, nil, "clique_propose", addr, auth)
}

func discard(ctx context.Context, url string, addr common.Address) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if c, err := rpc.DialContext(ctx, url); err == nil {
		c.CallContext(ctx, nil, "clique_discard", addr)
		c.Close()
	}
}

func addrs(as []common.Address) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.Hex()
	}
	return strings.Join(s, ", ")
}
