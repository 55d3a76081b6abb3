// Package chainfollow makes the registrar follow a BFT consortium's
// membership as the chain decides it. The validators vote members in and
// out on chain (internal/governance); the follower reads the governance
// state from CometBFT RPC endpoints (abci_query, path /governance/state),
// and hands the member list to the registry, which revokes a member that
// left (its nodes leave every peer set, its credential gets 401 revoked)
// and admits one voted in with its credential hash.
//
// What it trusts: the endpoints it is given, by majority. Each poll asks
// every endpoint; a member list is applied only when more than half of the
// endpoints answer the same list, and only if the lowest height among
// those answers is not below the last height applied (a lagging node
// cannot roll the registry back). One endpoint (the registrar's own
// member's node) is trusted alone; three or more, of different members,
// tolerate a minority lying or lagging. The answers are not checked
// against a light client: a majority of the endpoints colluding can
// change the registry's members, as they could halt the chain.
package chainfollow

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consortium/consortium/internal/governance"
	"github.com/consortium/consortium/internal/registry"
)

// QueryPath is the ABCI query path of the governance state (the same as
// consensus.QueryGovernanceState, which this package does not import: the
// consensus node is no part of the registrar).
const QueryPath = "/governance/state"

// maxAnswerBytes bounds one RPC answer: the state of MaxMembers members
// and their proposals is far below it.
const maxAnswerBytes = 16 << 20

// Errors of one poll.
var (
	// ErrNoMajority: fewer than a majority of the endpoints gave the same
	// member list (unreachable, lagging through a change, or disagreeing).
	ErrNoMajority = errors.New("chainfollow: no majority of the chain RPC endpoints agrees on the members")
	// ErrBadAnswer: an endpoint's answer is not a governance state.
	ErrBadAnswer = errors.New("chainfollow: bad answer from a chain RPC endpoint")
	// ErrConfig: no endpoint, or one that is not an http(s) URL or host:port.
	ErrConfig = errors.New("chainfollow: bad configuration")
)

// Sink receives the member list a majority agreed on; *registry.Registry
// is one.
type Sink interface {
	SyncChainMembers(ctx context.Context, members []registry.ChainMember) (registry.ChainSync, error)
}

// Config configures a Follower. Zero values are the defaults.
type Config struct {
	// URLs are CometBFT RPC endpoints: http(s)://host:port or host:port
	// (http). Required.
	URLs []string
	// Interval between polls. Default 1s: about a block, so a change is
	// applied within a block or two of being decided.
	Interval time.Duration
	// Timeout of one endpoint's answer. Default 3s.
	Timeout time.Duration
	// Client does the requests. Default: a client with Timeout.
	Client *http.Client
	// Logger. Default: discard.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 3 * time.Second
	}
	if c.Client == nil {
		c.Client = &http.Client{Timeout: c.Timeout}
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// ParseURLs splits a comma-separated --chain-rpc value into endpoint URLs.
func ParseURLs(s string) ([]string, error) {
	var out []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if !strings.Contains(part, "://") {
			part = "http://" + part
		}
		u, err := url.Parse(part)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: chain RPC %q is not http(s)://host:port or host:port", ErrConfig, part)
		}
		out = append(out, strings.TrimRight(part, "/"))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no chain RPC endpoint", ErrConfig)
	}
	return out, nil
}

// Follower polls the endpoints and feeds the sink.
type Follower struct {
	cfg  Config
	sink Sink

	mu      sync.Mutex
	applied uint64 // the lowest agreeing height of the last list applied
	last    string // that list's key
	lastErr string // the last poll's error, logged once per change
	// gov is the governance state the last poll's majority agreed on (at
	// its lowest height), for the dashboard's proposals and preview.
	gov       *governance.State
	govHeight uint64
}

// Governance returns the governance state a majority of the endpoints
// last agreed on, and its height; nil before the first agreeing poll. The
// state is shared: callers must not change it.
func (f *Follower) Governance() (*governance.State, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gov, f.govHeight
}

// New checks cfg and returns a follower; Run starts it.
func New(cfg Config, sink Sink) (*Follower, error) {
	cfg = cfg.withDefaults()
	if len(cfg.URLs) == 0 {
		return nil, fmt.Errorf("%w: no chain RPC endpoint", ErrConfig)
	}
	return &Follower{cfg: cfg, sink: sink}, nil
}

// URLs are the endpoints the follower asks.
func (f *Follower) URLs() []string { return slices.Clone(f.cfg.URLs) }

// Run polls until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	t := time.NewTicker(f.cfg.Interval)
	defer t.Stop()
	for {
		err := f.Poll(ctx)
		f.mu.Lock()
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != f.lastErr {
			if err != nil {
				f.cfg.Logger.Warn("chain follower: members not updated", "err", err)
			} else if f.lastErr != "" {
				f.cfg.Logger.Info("chain follower: following the chain again")
			}
			f.lastErr = msg
		}
		f.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Poll asks every endpoint once and applies the member list a majority
// agrees on.
func (f *Follower) Poll(ctx context.Context) error {
	answers := make([]Answer, len(f.cfg.URLs))
	var wg sync.WaitGroup
	for i, u := range f.cfg.URLs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = f.ask(ctx, u)
		}()
	}
	wg.Wait()
	members, height, err := Agree(answers)
	if err != nil {
		return err
	}
	key := listKey(members)
	f.mu.Lock()
	if st := agreedState(answers, key, height); st != nil && height >= f.govHeight {
		f.gov, f.govHeight = st, height
	}
	if height < f.applied || key == f.last {
		if height > f.applied {
			f.applied = height
		}
		f.mu.Unlock()
		return nil
	}
	f.mu.Unlock()
	sync, err := f.sink.SyncChainMembers(ctx, members)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.applied, f.last = height, key
	f.mu.Unlock()
	if !sync.Empty() {
		f.cfg.Logger.Info("chain follower: members follow the chain", "height", height,
			"added", sync.Added, "readmitted", sync.Readmitted, "revoked", sync.Revoked, "unknown", sync.Unknown)
	}
	return nil
}

// Answer is one endpoint's reply: the members of its last committed
// governance state and that state's height, or why there is none.
type Answer struct {
	URL     string
	Height  uint64
	Members []registry.ChainMember
	// State is the whole governance state the members come from.
	State *governance.State
	Err   error
}

// Agree is the pure decision of a poll: the member list more than half of
// the answers (errors included, so an endpoint that does not answer counts
// against a majority) give, and the lowest height among them.
func Agree(answers []Answer) ([]registry.ChainMember, uint64, error) {
	type group struct {
		members []registry.ChainMember
		count   int
		low     uint64
	}
	groups := map[string]*group{}
	var errs []string
	for _, a := range answers {
		if a.Err != nil {
			errs = append(errs, a.URL+": "+a.Err.Error())
			continue
		}
		k := listKey(a.Members)
		g, ok := groups[k]
		if !ok {
			g = &group{members: a.Members, low: a.Height}
			groups[k] = g
		}
		g.count++
		if a.Height < g.low {
			g.low = a.Height
		}
	}
	for _, g := range groups {
		if 2*g.count > len(answers) {
			return g.members, g.low, nil
		}
	}
	return nil, 0, fmt.Errorf("%w: %d endpoints, %d distinct lists; %s", ErrNoMajority, len(answers), len(groups), strings.Join(errs, "; "))
}

// agreedState is the state of the answer, among those giving the agreed
// member list, at the agreed (lowest) height: the pending proposals are not
// part of the agreement, so the oldest state of the majority is shown
// rather than the newest a single endpoint claims.
func agreedState(answers []Answer, key string, height uint64) *governance.State {
	for _, a := range answers {
		if a.Err == nil && a.State != nil && a.Height == height && listKey(a.Members) == key {
			return a.State
		}
	}
	return nil
}

// listKey is a canonical text of a member list (the state keeps members
// sorted by name).
func listKey(ms []registry.ChainMember) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString(m.Name)
		b.WriteByte('=')
		b.WriteString(m.CredHash)
		b.WriteByte(';')
	}
	return b.String()
}

// ask queries one endpoint.
func (f *Follower) ask(ctx context.Context, base string) Answer {
	a := Answer{URL: base}
	ctx, cancel := context.WithTimeout(ctx, f.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/abci_query?path="+url.QueryEscape(`"`+QueryPath+`"`), nil)
	if err != nil {
		a.Err = err
		return a
	}
	resp, err := f.cfg.Client.Do(req)
	if err != nil {
		a.Err = err
		return a
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		a.Err = err
		return a
	}
	a.Height, a.State, a.Err = DecodeState(body)
	if a.Err == nil {
		a.Members = membersOf(a.State)
	}
	return a
}

// DecodeAnswer reads a CometBFT RPC abci_query answer (JSON-RPC) of the
// governance state: the state's height and its members. Anything else,
// including a state that fails governance.Unmarshal's checks, is
// ErrBadAnswer.
func DecodeAnswer(body []byte) (uint64, []registry.ChainMember, error) {
	height, s, err := DecodeState(body)
	if err != nil {
		return 0, nil, err
	}
	return height, membersOf(s), nil
}

// DecodeState is DecodeAnswer's first half: the state itself, checked by
// governance.Unmarshal.
func DecodeState(body []byte) (uint64, *governance.State, error) {
	if len(body) > maxAnswerBytes {
		return 0, nil, fmt.Errorf("%w: answer over %d bytes", ErrBadAnswer, maxAnswerBytes)
	}
	var rpc struct {
		Result *struct {
			Response struct {
				Code   uint32 `json:"code"`
				Log    string `json:"log"`
				Value  string `json:"value"`
				Height string `json:"height"`
			} `json:"response"`
		} `json:"result"`
		Error *struct {
			Message string `json:"message"`
			Data    string `json:"data"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &rpc); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	if rpc.Error != nil {
		return 0, nil, fmt.Errorf("%w: %s %s", ErrBadAnswer, rpc.Error.Message, rpc.Error.Data)
	}
	if rpc.Result == nil {
		return 0, nil, fmt.Errorf("%w: no result", ErrBadAnswer)
	}
	r := rpc.Result.Response
	if r.Code != 0 {
		return 0, nil, fmt.Errorf("%w: query code %d: %s", ErrBadAnswer, r.Code, r.Log)
	}
	height, err := strconv.ParseUint(r.Height, 10, 64)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: height %q", ErrBadAnswer, r.Height)
	}
	raw, err := base64.StdEncoding.DecodeString(r.Value)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: value: %v", ErrBadAnswer, err)
	}
	s, err := governance.Unmarshal(raw)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrBadAnswer, err)
	}
	return height, s, nil
}

// membersOf is the registrar's view of the state's members: names and
// credential hashes.
func membersOf(s *governance.State) []registry.ChainMember {
	out := make([]registry.ChainMember, 0, len(s.Members))
	for _, m := range s.Members {
		cm := registry.ChainMember{Name: m.Name}
		if len(m.CredHash) > 0 {
			cm.CredHash = hex.EncodeToString(m.CredHash)
		}
		out = append(out, cm)
	}
	return out
}
