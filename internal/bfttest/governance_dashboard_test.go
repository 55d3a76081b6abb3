package bfttest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// dashGovernance is chain.governance in the dashboard's GET /ui/api/state,
// with the field names docs/dashboard.md gives. It is decoded here rather
// than into governance.View so a renamed field fails these tests.
type dashGovernance struct {
	Height     uint64         `json:"height"`
	Validators int            `json:"validators"`
	Total      int64          `json:"total_power"`
	Needed     int64          `json:"needed_power"`
	Tolerates  int            `json:"tolerates"`
	Summary    string         `json:"summary"`
	Proposals  []dashProposal `json:"proposals"`
}

type dashProposal struct {
	ID       string   `json:"id"`
	Kind     string   `json:"kind"`
	Member   string   `json:"member"`
	Action   string   `json:"action"`
	Proposer string   `json:"proposer"`
	Votes    []string `json:"votes"`
	Missing  []string `json:"missing"`
	Power    int64    `json:"power"`
	Expires  uint64   `json:"expires"`
	Before   string   `json:"before"`
	After    string   `json:"after"`
	Halts    string   `json:"halts"`
	Refused  string   `json:"refused"`
}

// dashState is the part of the dashboard's state these tests read.
type dashState struct {
	Principal string `json:"principal"`
	Nodes     []struct {
		Member string `json:"member"`
		Role   string `json:"role"`
	} `json:"nodes"`
	Chain *struct {
		Governance *dashGovernance `json:"governance"`
	} `json:"chain"`
}

// dashboardState is GET /ui/api/state as cred sees it. An error (a 429 of
// the dashboard's rate limit included) is for the caller's poll to retry.
func (c *cluster) dashboardState(cred string) (*dashState, error) {
	req, err := http.NewRequest("GET", c.regURL+"/ui/api/state", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading the dashboard's state: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /ui/api/state: %d %s", resp.StatusCode, b)
	}
	var s dashState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decoding the dashboard's state: %w", err)
	}
	if s.Chain == nil || s.Chain.Governance == nil {
		return nil, fmt.Errorf("no chain.governance in the dashboard's state for %s", s.Principal)
	}
	return &s, nil
}

// wantProposal is what the dashboard must show of one open proposal.
type wantProposal struct {
	id, kind, member, proposer string
	votes, missing             []string
	power, needed              int64
	before, after              string // prefixes: an offline list may follow
}

// dashboardShows checks that cred's dashboard lists the open proposal w,
// with its votes, who is missing and the fault tolerance before and after.
func (c *cluster) dashboardShows(cred string, w wantProposal) error {
	s, err := c.dashboardState(cred)
	if err != nil {
		return err
	}
	g := s.Chain.Governance
	i := slices.IndexFunc(g.Proposals, func(p dashProposal) bool { return p.ID == w.id })
	if i < 0 {
		return fmt.Errorf("%s's dashboard: proposal %.8s not among %d open at height %d", s.Principal, w.id, len(g.Proposals), g.Height)
	}
	p := g.Proposals[i]
	got := fmt.Sprintf("%s %s by %s, votes %v, missing %v, power %d of %d, %q → %q (halts %q, refused %q)",
		p.Kind, p.Member, p.Proposer, p.Votes, p.Missing, p.Power, g.Needed, p.Before, p.After, p.Halts, p.Refused)
	switch {
	case p.Kind != w.kind || p.Member != w.member || p.Proposer != w.proposer || !strings.Contains(p.Action, w.kind+" member "+w.member):
		return fmt.Errorf("%s's dashboard shows %s (action %q); want %s %s by %s", s.Principal, got, p.Action, w.kind, w.member, w.proposer)
	case !slices.Equal(p.Votes, w.votes) || !slices.Equal(p.Missing, w.missing) || p.Power != w.power || g.Needed != w.needed:
		return fmt.Errorf("%s's dashboard shows %s; want votes %v, missing %v, power %d of %d", s.Principal, got, w.votes, w.missing, w.power, w.needed)
	case !strings.HasPrefix(p.Before, w.before) || !strings.HasPrefix(p.After, w.after) || p.Halts != "" || p.Refused != "":
		// A validator late with one precommit counts as offline and may
		// make the preview say the change halts: the poll asks again.
		return fmt.Errorf("%s's dashboard shows %s; want %q → %q", s.Principal, got, w.before, w.after)
	case p.Expires <= g.Height:
		return fmt.Errorf("%s's dashboard shows the proposal open at height %d, expiring at %d", s.Principal, g.Height, p.Expires)
	}
	return nil
}

// dashboardSettled checks that cred's dashboard shows validators in the set
// and no open proposal any more.
func (c *cluster) dashboardSettled(cred string, validators int) error {
	s, err := c.dashboardState(cred)
	if err != nil {
		return err
	}
	g := s.Chain.Governance
	if g.Validators != validators || len(g.Proposals) != 0 {
		return fmt.Errorf("%s's dashboard at height %d: %d validators (%q), %d proposals open; want %d and none",
			s.Principal, g.Height, g.Validators, g.Summary, len(g.Proposals), validators)
	}
	return nil
}

// othersPrivateNodes is an error when member's dashboard lists another
// member's node that is not a public node: a member sees every proposal
// (voting is every member's business) but not the others' private nodes.
func othersPrivateNodes(s *dashState, member string) error {
	for _, n := range s.Nodes {
		if n.Member != member && n.Role != "public" {
			return fmt.Errorf("%s's dashboard lists %s's %s node", member, n.Member, n.Role)
		}
	}
	return nil
}
