package governance

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sort"

	"github.com/ethereum/go-ethereum/rlp"
)

// DefaultKeep is how many heights of history a Journal keeps by default:
// far more than geth loses in a crash (it rewinds to its last persisted
// state, at most a few hundred blocks back), so a restart always finds the
// state of the height geth comes back at.
const DefaultKeep = 10000

const journalVersion = 1

// journalDomain keys the checksum that ends an encoded journal.
const journalDomain = "consortium governance journal v1\n"

// maxJournalBytes bounds UnmarshalJournal: DefaultKeep heights of states
// that change rarely stay far below it.
const maxJournalBytes = 1 << 30

func journalSum(payload []byte) [sha256.Size]byte {
	return sha256.Sum256(append([]byte(journalDomain), payload...))
}

// Journal is the governance state as of every recent height, for the
// app's restart. The app hash of a height folds in the governance state
// of that height, and after a crash geth may come back some blocks behind
// what CometBFT committed: the app must then report geth's height with
// that height's governance state, and CometBFT replays the rest. The
// state changes rarely, so the journal stores it only where it changed,
// plus the last height recorded.
//
// A Journal is the app's own, changed from FinalizeBlock/Commit only, so
// it has no lock. It is pure like the rest: the app persists Marshal.
type Journal struct {
	keep    uint64
	last    uint64
	entries []journalEntry // ascending heights; each holds from its height to the next
}

type journalEntry struct {
	Height uint64
	State  []byte // State.Marshal
}

// NewJournal starts a journal at height 0 (InitChain) with the genesis
// state. keep 0 means DefaultKeep.
func NewJournal(genesis *State, keep uint64) *Journal {
	if keep == 0 {
		keep = DefaultKeep
	}
	return &Journal{keep: keep, entries: []journalEntry{{Height: 0, State: genesis.Marshal()}}}
}

// Last is the newest height recorded.
func (j *Journal) Last() uint64 { return j.last }

// Record notes s as the state after height. Recording a height at or
// below Last first forgets everything from that height on: a replay
// rewrites history, and being deterministic it rewrites the same bytes.
func (j *Journal) Record(height uint64, s *State) {
	enc := s.Marshal()
	if height == 0 {
		*j = Journal{keep: j.keep, entries: []journalEntry{{Height: 0, State: enc}}}
		return
	}
	if height <= j.last {
		j.Truncate(height - 1)
	}
	j.last = height
	if !bytes.Equal(enc, j.entries[len(j.entries)-1].State) {
		j.entries = append(j.entries, journalEntry{Height: height, State: enc})
	}
	j.prune()
}

// prune keeps what At needs for every height in [Last-keep, Last].
func (j *Journal) prune() {
	if j.last < j.keep {
		return
	}
	horizon := j.last - j.keep
	drop := 0
	for drop+1 < len(j.entries) && j.entries[drop+1].Height <= horizon {
		drop++
	}
	j.entries = j.entries[drop:]
}

// At is the state after height, for Info after a restart: with geth at
// head E, the app reports min(E, Last) and At of it.
func (j *Journal) At(height uint64) (*State, error) {
	if height > j.last || height < j.entries[0].Height {
		return nil, fmt.Errorf("%w: height %d, journal holds %d..%d", ErrNoHistory, height, j.entries[0].Height, j.last)
	}
	i := sort.Search(len(j.entries), func(i int) bool { return j.entries[i].Height > height }) - 1
	return Unmarshal(j.entries[i].State)
}

// Truncate forgets every height above height, so the replay CometBFT is
// about to run records them again.
func (j *Journal) Truncate(height uint64) {
	if height >= j.last {
		return
	}
	j.last = height
	for len(j.entries) > 1 && j.entries[len(j.entries)-1].Height > height {
		j.entries = j.entries[:len(j.entries)-1]
	}
}

type wireJournal struct {
	Version uint8
	Keep    uint64
	Last    uint64
	Entries []journalEntry
}

// Marshal is what the app writes (atomically) at every Commit: the RLP
// encoding followed by its SHA-256 checksum, so that a file cut short or
// damaged on disk is told apart from a valid journal at start.
func (j *Journal) Marshal() []byte {
	enc, err := rlp.EncodeToBytes(&wireJournal{Version: journalVersion, Keep: j.keep, Last: j.last, Entries: j.entries})
	if err != nil {
		panic(err)
	}
	sum := journalSum(enc)
	return append(enc, sum[:]...)
}

// UnmarshalJournal reads what Marshal wrote; every state in it must
// Unmarshal, so a damaged file is found at start, not at the next crash.
// Bytes whose checksum does not match (a torn or corrupted write) are
// ErrJournalDamaged; a checksum over bytes that are no journal is ErrState.
func UnmarshalJournal(b []byte) (*Journal, error) {
	if len(b) <= sha256.Size {
		return nil, fmt.Errorf("%w: %d bytes, too short for a checksum", ErrJournalDamaged, len(b))
	}
	if len(b) > maxJournalBytes {
		return nil, fmt.Errorf("%w: journal of %d bytes", ErrState, len(b))
	}
	payload, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if want := journalSum(payload); !bytes.Equal(sum, want[:]) {
		return nil, fmt.Errorf("%w: checksum mismatch over %d bytes", ErrJournalDamaged, len(b))
	}
	var w wireJournal
	if err := rlp.DecodeBytes(payload, &w); err != nil {
		return nil, fmt.Errorf("%w: journal: %v", ErrState, err)
	}
	if w.Version != journalVersion || w.Keep == 0 || len(w.Entries) == 0 {
		return nil, fmt.Errorf("%w: journal version %d, keep %d, %d entries", ErrState, w.Version, w.Keep, len(w.Entries))
	}
	for i, e := range w.Entries {
		if e.Height > w.Last || (i > 0 && w.Entries[i-1].Height >= e.Height) {
			return nil, fmt.Errorf("%w: journal entry %d at height %d out of order", ErrState, i, e.Height)
		}
		if _, err := Unmarshal(e.State); err != nil {
			return nil, fmt.Errorf("journal entry at height %d: %w", e.Height, err)
		}
	}
	return &Journal{keep: w.Keep, last: w.Last, entries: w.Entries}, nil
}
