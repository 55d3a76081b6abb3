package agent

import (
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/noderecord"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/crypto"
)

// fakeConsensus records the peer sets it is given.
type fakeConsensus struct {
	id   string
	fail error
	mu   sync.Mutex
	sets [][]string
}

func (f *fakeConsensus) ID() string { return f.id }
func (f *fakeConsensus) SetPeers(addrs []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, slices.Clone(addrs))
	return f.fail
}

const cmtID = "0123456789abcdef0123456789abcdef01234567"

// The record carries the "cmt" entry that noderecord reads back: the
// consensus node ID and port at the record's IP.
func TestSignRecordWithConsensus(t *testing.T) {
	k, _ := crypto.GenerateKey()
	id, err := noderecord.ParseConsensusID(cmtID)
	if err != nil {
		t.Fatal(err)
	}
	ep := Endpoint{IP: net.ParseIP("10.0.0.7"), TCP: 30303, UDP: 30303}
	for _, tc := range []struct {
		name string
		cmt  *noderecord.Consensus
		want string
	}{
		{"with a consensus process", &noderecord.Consensus{ID: id, Port: 26656}, cmtID + "@10.0.0.7:26656"},
		{"without", nil, ""},
	} {
		text, err := SignRecordWith(k, 7, ep, tc.cmt)
		if err != nil {
			t.Fatal(err)
		}
		r, err := noderecord.Parse(text)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := r.ConsensusAddr(); got != tc.want {
			t.Errorf("%s: consensus address %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestConsensusConfig(t *testing.T) {
	fc := &fakeConsensus{id: cmtID}
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"port required", Config{Consensus: fc}, "consensus port 0"},
		{"bad ID", Config{Consensus: &fakeConsensus{id: "xyz"}, ConsensusPort: 26656}, "consensus node ID"},
		{"public port defaults to the port", Config{Consensus: fc, ConsensusPort: 26656}, ""},
	} {
		k, _ := crypto.GenerateKey()
		rc, _ := registrarclient.New(registrarclient.Config{})
		tc.cfg.Client, tc.cfg.Registrar, tc.cfg.Key, tc.cfg.Role, tc.cfg.StateDir = &fakeClient{}, rc, k, "tx", t.TempDir()
		got, err := tc.cfg.withDefaults()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || got.PublicConsensusPort != 26656 {
			t.Errorf("%s: err %v, public port %d", tc.name, err, got.PublicConsensusPort)
		}
	}
}

// Every new answer's consensus list goes to the consensus process, once,
// from the main loop's step; an empty list is applied as "no peers"; a
// refused list is not retried until the next answer.
func TestConsensusFollowsTheAnswer(t *testing.T) {
	fc := &fakeConsensus{id: cmtID}
	a := newUnitAgent(t, &fakeClient{}, Config{Consensus: fc, ConsensusPort: 26656})
	answer := func(cmt ...string) {
		a.applySet(&registrarclient.Peers{PeerSet: api.PeerSet{Index: 1, Consensus: cmt}})
	}
	a.consensusStep()
	if len(fc.sets) != 0 {
		t.Fatal("a peer set before any answer")
	}
	answer("aa@10.0.0.1:26656", "bb@10.0.0.2:26656")
	a.consensusStep()
	a.consensusStep()
	answer()
	a.consensusStep()
	fc.fail = errors.New("refused")
	answer("cc@10.0.0.3:26656")
	a.consensusStep()
	a.consensusStep()
	want := [][]string{{"aa@10.0.0.1:26656", "bb@10.0.0.2:26656"}, {}, {"cc@10.0.0.3:26656"}}
	if len(fc.sets) != len(want) {
		t.Fatalf("sets %q, want %q", fc.sets, want)
	}
	for i := range want {
		if !slices.Equal(fc.sets[i], want[i]) {
			t.Fatalf("sets %q, want %q", fc.sets, want)
		}
	}
	// The list is saved with the set, so a restart with the registrar down
	// gives the consensus process the last list at once.
	st, ok, err := LoadState(a.cfg.StateDir)
	if err != nil || !ok || !slices.Equal(st.Consensus, []string{"cc@10.0.0.3:26656"}) {
		t.Fatalf("saved %v %v %q", ok, err, st.Consensus)
	}
}
