package consensus

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/consortium/consortium/internal/atomicfile"
	"github.com/consortium/consortium/internal/governance"
)

// QueryGovernanceState is the ABCI query path (CometBFT RPC abci_query) that
// answers the governance state of the last committed block, encoded with
// governance.State.Marshal; the response's Height is that block's height.
// `consortium member proposals` reads it.
const QueryGovernanceState = "/governance/state"

// journalFile is the governance journal in the CometBFT home's data
// directory, beside CometBFT's own databases.
const journalFile = "governance.journal"

// govView is a governance state, the height it is the state after and
// that height's app hash (nil at genesis before InitChain answers).
type govView struct {
	state   *governance.State
	height  uint64
	appHash []byte
}

// gov is the app's governance: the validator set decided by the members'
// votes (internal/governance), carried in the blocks after the payload.
//
// The consensus connection (InitChain, the proposal calls, FinalizeBlock,
// Commit) owns journal and next; the mempool and query connections read
// committed only, which changes at Commit.
type gov struct {
	chainID string
	genesis []governance.Member
	path    string // the journal file; empty keeps it in memory only (tests)
	damaged error  // set by load when it moved a damaged journal aside, for the log

	mu        sync.Mutex // journal, next
	journal   *governance.Journal
	next      *govView // FinalizeBlock's result, until Commit
	committed atomic.Pointer[govView]
}

// newGov reads the first members from the CometBFT genesis and the journal
// from its file when the node ran before.
func newGov(genesisFile, dataDir string) (*gov, error) {
	doc, err := cmttypes.GenesisDocFromFile(genesisFile)
	if err != nil {
		return nil, fmt.Errorf("%w: CometBFT genesis: %v", ErrConfig, err)
	}
	members, err := governance.MembersFromGenesis(doc.Validators)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	g := &gov{chainID: doc.ChainID, genesis: members}
	if dataDir != "" {
		g.path = filepath.Join(dataDir, journalFile)
		if err := g.load(); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// load reads the journal. A damaged one (torn by a machine crash, or
// corrupted on disk: its checksum does not match) is moved aside to
// governance.journal.damaged and the node starts as if it had none: the
// journal only spares a replay, and the handshake replays every height
// from CometBFT's block store when it is missing, which rebuilds the same
// states. Any other error (unreadable, a journal of another version)
// stops the start, so nothing is thrown away that an operator may need.
func (g *gov) load() error {
	b, err := os.ReadFile(g.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: governance journal: %v", ErrConfig, err)
	}
	j, err := governance.UnmarshalJournal(b)
	if errors.Is(err, governance.ErrJournalDamaged) {
		aside := g.path + ".damaged"
		if rerr := os.Rename(g.path, aside); rerr != nil {
			return fmt.Errorf("%w: governance journal %s: %v; and it cannot be moved aside: %v", ErrConfig, g.path, err, rerr)
		}
		g.damaged = fmt.Errorf("governance journal %s: %v; moved to %s, replaying from height 1", g.path, err, aside)
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: governance journal %s: %v", ErrConfig, g.path, err)
	}
	g.journal = j
	return nil
}

// genesisState is the state at height 0.
func (g *gov) genesisState() (*governance.State, error) {
	s, err := governance.NewState(g.chainID, g.genesis, governance.DefaultConfig())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return s, nil
}

// initChain starts the journal at the genesis state.
func (g *gov) initChain(elGenesis []byte) (*governance.State, error) {
	s, err := g.genesisState()
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.journal = governance.NewJournal(s, 0)
	g.next = nil
	g.committed.Store(&govView{state: s, appHash: governance.AppHash(elGenesis, s)})
	return s, g.persist()
}

// recordedUpTo is the last height the journal holds; ok is false when there
// is no journal (a node that never ran, or whose file was lost).
func (g *gov) recordedUpTo() (uint64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.journal == nil {
		return 0, false
	}
	return g.journal.Last(), true
}

// rewind makes the state after height the committed one and forgets every
// later height: the handshake is about to replay them.
//
// elHash is the EL block hash at height, for the view's app hash.
func (g *gov) rewind(height uint64, elHash []byte) (*governance.State, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	s, err := g.journal.At(height)
	if err != nil {
		return nil, err
	}
	g.journal.Truncate(height)
	g.next = nil
	g.committed.Store(&govView{state: s, height: height, appHash: governance.AppHash(elHash, s)})
	return s, nil
}

// view is the committed state, what CheckTx, PrepareProposal,
// ProcessProposal and FinalizeBlock of the next height start from.
func (g *gov) view() *govView {
	if v := g.committed.Load(); v != nil {
		return v
	}
	s, err := g.genesisState()
	if err != nil { // New checked the genesis; cannot happen
		panic(err)
	}
	return &govView{state: s}
}

// finalized holds FinalizeBlock's state and app hash until Commit.
func (g *gov) finalized(height uint64, s *governance.State, appHash []byte) {
	g.mu.Lock()
	g.next = &govView{state: s, height: height, appHash: appHash}
	g.mu.Unlock()
}

// commit records the finalized state in the journal and writes it out
// before the state becomes the committed one.
func (g *gov) commit() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.next == nil {
		return nil
	}
	if g.journal == nil {
		s, err := g.genesisState()
		if err != nil {
			return err
		}
		g.journal = governance.NewJournal(s, 0)
	}
	g.journal.Record(g.next.height, g.next.state)
	g.committed.Store(g.next)
	g.next = nil
	return g.persist()
}

// persist writes the journal atomically and durably: a new file, fsynced,
// renamed over the old, then the directory fsynced. A crash of the process
// or of the machine leaves the old journal or the new one, never half of
// one and never a name pointing at data the disk did not keep (ext4 and
// xfs may otherwise persist the rename before the file's blocks). The
// checksum Marshal appends catches what is left: a disk that lies.
func (g *gov) persist() error {
	if g.path == "" || g.journal == nil {
		return nil
	}
	if err := writeDurably(g.path, g.journal.Marshal()); err != nil {
		return fmt.Errorf("governance journal: %w", err)
	}
	return nil
}

// writeDurably replaces path with b: tmp file, fsync, rename, fsync of
// the directory.
func writeDurably(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return atomicfile.SyncDir(filepath.Dir(path))
}

// MemberNames maps each current validator's address (upper-case hex, as
// CometBFT shows it) to its member's name, from the committed governance
// state: a validator the members voted in is named like the first ones.
func (n *Node) MemberNames() map[string]string {
	s := n.app.gov.view().state
	out := make(map[string]string, len(s.Members))
	for _, m := range s.Members {
		out[m.PubKey.Address().String()] = m.Name
	}
	return out
}
