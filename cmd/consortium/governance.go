package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/cliflags"
	"github.com/consortium/consortium/internal/consensus"
	"github.com/consortium/consortium/internal/governance"
	"github.com/urfave/cli/v3"
)

// The validator set of a BFT consortium is decided by the members' vote on
// chain (issue 21): these subcommands of `consortium member` talk to the
// member's own consensus process (the agent's --consensus-rpc, on
// loopback), sign with the member's validator key, and never touch the
// registrar.
const governanceUse = `consortium member propose add NAME --pubkey KEY [--power N] [--credential-file FILE | --credential-hash HEX] | propose remove NAME | propose rotate NAME --pubkey KEY
       consortium member vote ID
       consortium member proposals
       consortium member new-credential NAME --out FILE
  (flags: --consensus-rpc HOST:PORT, --validator-key FILE for propose and vote, --force, --wait DURATION)`

// governanceCommands are the subcommands of `consortium member` that
// vote on the validator set.
func governanceCommands(e *env) []*cli.Command {
	gov := func(name, args, usage string) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, ArgsUsage: args, Flags: governanceFlagList(e),
			Action: func(ctx context.Context, cmd *cli.Command) error {
				return runGovernance(ctx, e, name, cmd)
			},
		}
	}
	return []*cli.Command{
		gov("propose", "add|remove|rotate NAME", "propose a change of the validator set, signed with the member's validator key"),
		gov("vote", "ID", "sign a pending proposal"),
		gov("proposals", "", "list the pending proposals, with the fault tolerance before and after each"),
		{
			Name: "new-credential", Usage: "make a future member's registrar credential; prints the hash an add proposal carries", ArgsUsage: "NAME",
			Flags:  []cli.Flag{cliflags.String("out", "", "file to write the credential to (mode 0600; refused if it exists)")},
			Action: func(ctx context.Context, cmd *cli.Command) error { return runNewCredential(e, cmd) },
		},
	}
}

type governanceFlags struct {
	rpc, key, pubkey   string
	credFile, credHash string
	power              int64
	force, keyOnline   bool
	wait               time.Duration
}

// governanceFlagList are the flags of propose, vote and proposals. The new
// member's --credential-file has no environment variable: the proposer's
// own CONSORTIUM_CREDENTIAL_FILE is another credential.
func governanceFlagList(e *env) []cli.Flag {
	return []cli.Flag{
		cliflags.String("consensus-rpc", "127.0.0.1:26657", "the member's consensus RPC (the agent's --consensus-rpc), host:port on loopback", e.source("CONSORTIUM_CONSENSUS_RPC")),
		cliflags.String("validator-key", "", "the member's validator key file (priv_validator_key.json of its validator's consensus home); signs proposals and votes", e.source("CONSORTIUM_VALIDATOR_KEY")),
		cliflags.String("pubkey", "", "propose add/rotate: the new validator's ed25519 public key, base64 (pub_key.value of its priv_validator_key.json) or hex"),
		cliflags.Int64("power", 0, "propose add: the new validator's voting power (default: the power of the existing validators when they are equal)"),
		cliflags.Bool("force", false, "propose or vote even when the change would halt the chain given the validators offline now"),
		cliflags.Bool("new-key-online", false, "propose add/rotate: the new key's node is already running (counts it online in the fault-tolerance preview)"),
		cliflags.Duration("wait", 60*time.Second, "wait this long for the transaction to be in a block (0: do not wait)"),
		cliflags.String("credential-file", "", "propose add: the new member's registrar credential FILE (from 'consortium member new-credential'); only its SHA-256 goes on chain, and the registrar following the chain admits the member with it"),
		cliflags.String("credential-hash", "", "propose add: the SHA-256 (64 hex digits) of the new member's credential secret, as 'consortium member new-credential' prints it"),
	}
}

func runGovernance(ctx context.Context, e *env, sub string, cmd *cli.Command) error {
	f := governanceFlags{
		rpc: cmd.String("consensus-rpc"), key: cmd.String("validator-key"), pubkey: cmd.String("pubkey"),
		power: cmd.Int64("power"), force: cmd.Bool("force"), keyOnline: cmd.Bool("new-key-online"), wait: cmd.Duration("wait"),
		credFile: cmd.String("credential-file"), credHash: cmd.String("credential-hash"),
	}
	args := cmd.Args()
	want := map[string]int{"proposals": 0, "vote": 1}[sub]
	if sub == "propose" {
		if args.Len() < 1 {
			return fmt.Errorf("%w: %s", errUsage, governanceUse)
		}
		want = 2
	}
	if args.Len() != want {
		return fmt.Errorf("%w: %s", errUsage, governanceUse)
	}
	c, err := dialConsensusRPC(f.rpc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second+f.wait)
	defer cancel()
	s, height, err := governanceState(ctx, c)
	if err != nil {
		return err
	}
	if sub == "proposals" {
		return printProposals(ctx, e, c, s, height)
	}
	if f.key == "" {
		return fmt.Errorf("%w: --validator-key is required: the member's priv_validator_key.json signs its proposals and votes", errUsage)
	}
	key, err := governance.LoadKeyFile(f.key)
	if err != nil {
		return err
	}
	me, ok := s.MemberByKey(key.PubKey().(ed25519.PubKey))
	if !ok {
		return fmt.Errorf("the key in %s is not a current validator's: only members' validators propose and vote", f.key)
	}
	offline, err := offlineNow(ctx, c, s)
	if err != nil {
		return err
	}
	var p governance.Proposal
	var tx []byte
	if sub == "propose" {
		a, err := f.action(s, args.Get(0), args.Get(1))
		if err != nil {
			return err
		}
		p = governance.Proposal{ChainID: s.ChainID, Anchor: height, Action: a}
		if !f.keyOnline && len(a.PubKey) > 0 {
			offline = append(offline, a.PubKey)
		}
		if err := preview(e, s, p, offline, f.force); err != nil {
			return err
		}
		if tx, err = governance.SignProposal(key, p); err != nil {
			return err
		}
	} else {
		pend, err := s.Find(args.Get(0))
		if err != nil {
			return err
		}
		p = pend.Proposal
		if slices.Contains(pend.Votes, me.Name) {
			return fmt.Errorf("member %s has already signed %s (%s)", me.Name, pend.ID.Short(), p.Action)
		}
		if len(p.Action.PubKey) > 0 && !f.keyOnline {
			offline = append(offline, p.Action.PubKey)
		}
		if err := preview(e, s, p, offline, f.force); err != nil {
			return err
		}
		if tx, err = governance.SignVote(key, s.ChainID, pend.ID); err != nil {
			return err
		}
	}
	id := p.ID()
	res, err := c.BroadcastTxSync(ctx, tx)
	if err != nil {
		return fmt.Errorf("consensus RPC %s: broadcast: %w", f.rpc, err)
	}
	if res.Code != 0 {
		if res.Codespace == governance.Codespace {
			return fmt.Errorf("refused by the chain: %s", res.Log)
		}
		return fmt.Errorf("refused by the consensus process (code %d, %s): %s", res.Code, res.Codespace, res.Log)
	}
	verb := "proposed"
	if sub == "vote" {
		verb = "voted for"
	}
	fmt.Fprintf(e.stdout, "member %s %s %s: %s\n  id %s\n", me.Name, verb, id.Short(), p.Action, id)
	if f.wait <= 0 {
		fmt.Fprintln(e.stdout, "  sent to the mempool; `consortium member proposals` shows when it is in a block")
		return nil
	}
	return waitGovernance(ctx, e, c, id, p.Action, me.Name, f.wait)
}

// action is the change `propose KIND NAME` asks for.
func (f governanceFlags) action(s *governance.State, kind, name string) (governance.Action, error) {
	a := governance.Action{Member: name}
	switch kind {
	case "add":
		a.Kind, a.Power = governance.ActionAdd, f.power
		if a.Power == 0 {
			a.Power = s.Members[0].Power
			for _, m := range s.Members {
				if m.Power != a.Power {
					return a, fmt.Errorf("%w: the validators' powers differ; say the new one's with --power", errUsage)
				}
			}
		}
		h, err := f.credentialHash(name)
		if err != nil {
			return a, err
		}
		a.CredHash = h
	case "remove":
		a.Kind = governance.ActionRemove
		if f.credFile != "" || f.credHash != "" {
			return a, fmt.Errorf("%w: only propose add carries a credential", errUsage)
		}
		if f.pubkey != "" || f.power != 0 {
			return a, fmt.Errorf("%w: propose remove takes no --pubkey and no --power", errUsage)
		}
		return a, nil
	case "rotate":
		a.Kind = governance.ActionRotate
		if f.credFile != "" || f.credHash != "" {
			return a, fmt.Errorf("%w: only propose add carries a credential", errUsage)
		}
		if f.power != 0 {
			return a, fmt.Errorf("%w: propose rotate keeps the member's power; no --power", errUsage)
		}
	default:
		return a, fmt.Errorf("%w: propose add, remove or rotate, not %q: %s", errUsage, kind, governanceUse)
	}
	k, err := parsePubKey(f.pubkey)
	if err != nil {
		return a, err
	}
	a.PubKey = k
	return a, nil
}

// credentialHash is the credential hash an add proposal carries for member
// name: from --credential-file (whose principal must be name) or
// --credential-hash; nil when neither is given (the registrar must then
// know the member already).
func (f governanceFlags) credentialHash(name string) ([]byte, error) {
	switch {
	case f.credFile != "" && f.credHash != "":
		return nil, fmt.Errorf("%w: give --credential-file or --credential-hash, not both", errUsage)
	case f.credFile != "":
		b, err := os.ReadFile(f.credFile)
		if err != nil {
			return nil, fmt.Errorf("%w: --credential-file: %v", errUsage, err)
		}
		c, err := auth.Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("%w: --credential-file %s: %v", errUsage, f.credFile, err)
		}
		if c.Principal != name {
			return nil, fmt.Errorf("%w: --credential-file %s is member %q's credential, not %q's", errUsage, f.credFile, c.Principal, name)
		}
		h, _ := hex.DecodeString(auth.Hash(c.Secret))
		return h, nil
	case f.credHash != "":
		h, err := hex.DecodeString(f.credHash)
		if err != nil || len(h) != sha256.Size {
			return nil, fmt.Errorf("%w: --credential-hash %q is not 64 hex digits (a SHA-256)", errUsage, f.credHash)
		}
		return h, nil
	}
	return nil, nil
}

// runNewCredential is `consortium member new-credential NAME --out FILE`:
// a future member makes its own registrar credential, keeps the file and
// hands the printed hash (or the file, to a member proposing it, which
// reads only the hash from it) to the add proposal. The secret never
// leaves the file.
func runNewCredential(e *env, cmd *cli.Command) error {
	out := cmd.String("out")
	if cmd.NArg() != 1 || out == "" {
		return fmt.Errorf("%w: consortium member new-credential NAME --out FILE", errUsage)
	}
	name := cmd.Args().First()
	if err := auth.ValidName(name); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	c, err := auth.New(name)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(out, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(f, c.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "credential of %s written to %s\ncredential hash (for `member propose add %s --credential-hash`): %s\n", name, out, name, auth.Hash(c.Secret))
	return nil
}

// parsePubKey reads an ed25519 public key as CometBFT shows it (base64,
// pub_key.value of priv_validator_key.json and genesis.json) or as hex.
func parsePubKey(s string) (ed25519.PubKey, error) {
	if s == "" {
		return nil, fmt.Errorf("%w: --pubkey is required: the new validator's ed25519 public key (pub_key.value of its priv_validator_key.json)", errUsage)
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == ed25519.PubKeySize {
		return ed25519.PubKey(b), nil
	}
	if b, err := hex.DecodeString(strings.TrimPrefix(s, "0x")); err == nil && len(b) == ed25519.PubKeySize {
		return ed25519.PubKey(b), nil
	}
	return nil, fmt.Errorf("%w: --pubkey %q is not a 32-byte ed25519 key in base64 or hex", errUsage, s)
}

// preview prints the fault tolerance before and after the change and
// refuses one that would halt the chain given who is offline now, unless
// forced.
func preview(e *env, s *governance.State, p governance.Proposal, offline []ed25519.PubKey, force bool) error {
	before, after, err := governance.Preview(s, p, offline)
	var halt *governance.HaltError
	switch {
	case errors.As(err, &halt):
		fmt.Fprintf(e.stderr, "fault tolerance: %s → %s\n", before, after)
		if !force {
			return fmt.Errorf("%w (--force to send it anyway)", err)
		}
		fmt.Fprintf(e.stderr, "warning: %v; sending it anyway (--force)\n", err)
	case err != nil:
		return err
	default:
		fmt.Fprintf(e.stderr, "fault tolerance: %s → %s\n", before, after)
	}
	return nil
}

func dialConsensusRPC(hostport string) (*rpchttp.HTTP, error) {
	if _, _, err := net.SplitHostPort(hostport); err != nil {
		return nil, fmt.Errorf("%w: --consensus-rpc %q is not host:port", errUsage, hostport)
	}
	c, err := rpchttp.New("http://" + hostport)
	if err != nil {
		return nil, fmt.Errorf("consensus RPC %s: %w", hostport, err)
	}
	return c, nil
}

// governanceState is the committed governance state and its height.
func governanceState(ctx context.Context, c *rpchttp.HTTP) (*governance.State, uint64, error) {
	q, err := c.ABCIQuery(ctx, consensus.QueryGovernanceState, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("consensus RPC %s: %w (is the agent running with --consensus-rpc?)", c.Remote(), err)
	}
	if q.Response.Code != 0 {
		return nil, 0, fmt.Errorf("consensus RPC %s: governance state: %s", c.Remote(), q.Response.Log)
	}
	s, err := governance.Unmarshal(q.Response.Value)
	if err != nil {
		return nil, 0, err
	}
	return s, uint64(q.Response.Height), nil
}

// offlineNow is the members whose validators did not sign the last
// canonical commit: the best evidence the chain has of who is down.
func offlineNow(ctx context.Context, c *rpchttp.HTTP, s *governance.State) ([]ed25519.PubKey, error) {
	cm, err := c.Commit(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("consensus RPC %s: commit: %w", c.Remote(), err)
	}
	// The latest height's commit is the one this node saw: the first
	// 2/3+ precommits, which may leave out a validator that is up. The
	// height before's is the one the next block carries, with every
	// precommit that came in during timeout_commit.
	if h := cm.Height - 1; h >= 1 {
		if prev, err := c.Commit(ctx, &h); err == nil {
			cm = prev
		}
	}
	var signers [][]byte
	for _, sig := range cm.Commit.Signatures {
		if sig.BlockIDFlag == cmttypes.BlockIDFlagCommit {
			signers = append(signers, sig.ValidatorAddress)
		}
	}
	return governance.Offline(s, signers), nil
}

func printProposals(ctx context.Context, e *env, c *rpchttp.HTTP, s *governance.State, height uint64) error {
	offline, err := offlineNow(ctx, c, s)
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, governance.RenderPending(s, height))
	for _, p := range s.Pending {
		off := offline
		if len(p.Proposal.Action.PubKey) > 0 {
			off = append(slices.Clone(offline), p.Proposal.Action.PubKey)
		}
		before, after, err := governance.Preview(s, p.Proposal, off)
		line := fmt.Sprintf("%s → %s", before, after)
		if err != nil {
			line += " (" + err.Error() + ")"
		}
		fmt.Fprintf(e.stdout, "%s  fault tolerance: %s\n", p.ID.Short(), line)
	}
	if len(offline) > 0 {
		var names []string
		for _, k := range offline {
			if m, ok := s.MemberByKey(k); ok {
				names = append(names, m.Name)
			}
		}
		fmt.Fprintf(e.stdout, "not in the last commit: %s\n", strings.Join(names, ", "))
	}
	return nil
}

// waitGovernance waits until the signature of member on proposal id is in
// a block: the proposal is pending with the vote, or decided.
func waitGovernance(ctx context.Context, e *env, c *rpchttp.HTTP, id governance.ID, a governance.Action, member string, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		s, height, err := governanceState(ctx, c)
		if err == nil {
			if p, ok := s.Proposal(id); ok && slices.Contains(p.Votes, member) {
				fmt.Fprintf(e.stdout, "  in a block by height %d: signed by %s (power %d of %d needed)\n",
					height, strings.Join(p.Votes, ", "), s.Tally(p.Votes), governance.Needed(s.TotalPower()))
				return nil
			}
			if slices.ContainsFunc(s.Closed, func(cl governance.Closed) bool { return bytes.Equal(cl.ID[:], id[:]) }) {
				fmt.Fprintf(e.stdout, "  decided by height %d: %s\n", height, outcome(s, a))
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("proposal %s: not in a block within %v (the mempool may still hold it; see `consortium member proposals`)", id.Short(), within)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// outcome says what a decided proposal did, from the state after it.
func outcome(s *governance.State, a governance.Action) string {
	m, ok := s.Member(a.Member)
	passed := false
	switch a.Kind {
	case governance.ActionAdd, governance.ActionRotate:
		passed = ok && bytes.Equal(m.PubKey, a.PubKey)
	case governance.ActionRemove:
		passed = !ok
	}
	if passed {
		return "passed; CometBFT applies the new validator set two blocks after the deciding one"
	}
	return "dropped (another change decided first made it obsolete)"
}
