package governance

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Apply returns them wrapped with the value that broke the
// rule; callers and tests branch with errors.Is. A refused transaction
// never changes the state.
var (
	// ErrDecode: the bytes are not a governance transaction of this
	// version, or not in its one canonical encoding.
	ErrDecode = errors.New("governance: undecodable transaction")
	// ErrWrongChain: signed for another chain (a replay from a test net
	// or another consortium).
	ErrWrongChain = errors.New("governance: transaction is for another chain")
	// ErrBadSignature: the signature does not verify under the signer key.
	ErrBadSignature = errors.New("governance: bad signature")
	// ErrNotValidator: the signer key is not a current validator's.
	ErrNotValidator = errors.New("governance: signer is not a current validator")
	// ErrReplayed: this member's vote on the proposal is already counted.
	ErrReplayed = errors.New("governance: vote already counted")
	// ErrUnknownProposal: no pending proposal has that ID (it never
	// existed, or it expired and was dropped).
	ErrUnknownProposal = errors.New("governance: unknown proposal")
	// ErrExpired: the proposal's last height has passed.
	ErrExpired = errors.New("governance: proposal expired")
	// ErrFutureAnchor: a proposal anchored above the current height; it
	// would outlive the TTL the members agreed on.
	ErrFutureAnchor = errors.New("governance: proposal anchored in the future")
	// ErrClosed: the proposal already passed (or was dropped as obsolete);
	// the same signed proposal cannot be replayed into a second change.
	ErrClosed = errors.New("governance: proposal already decided")
	// ErrDuplicate: an equal change is already pending under another ID;
	// vote for that one instead of splitting the votes.
	ErrDuplicate = errors.New("governance: an equal change is already pending")
	// ErrTooManyPending: the proposer has Config.MaxPendingPerMember open
	// proposals; bounds what one member can make every node store.
	ErrTooManyPending = errors.New("governance: too many pending proposals from this member")

	// The change itself, checked when proposed and again when it passes.
	ErrMemberExists   = errors.New("governance: member already exists")
	ErrKeyInUse       = errors.New("governance: validator key already in use")
	ErrUnknownMember  = errors.New("governance: unknown member")
	ErrLastMember     = errors.New("governance: cannot remove the last validator")
	ErrSameKey        = errors.New("governance: rotation to the key already in use")
	ErrBadPower       = errors.New("governance: power out of range")
	ErrBadName        = errors.New("governance: bad member name")
	ErrBadKey         = errors.New("governance: bad ed25519 public key")
	ErrBadCredHash    = errors.New("governance: bad credential hash")
	ErrTooManyMembers = errors.New("governance: too many members")

	// ErrState: a persisted state that does not decode or breaks an
	// invariant; the app must not run on it.
	ErrState = errors.New("governance: bad state")
	// ErrJournalDamaged: a journal file whose checksum does not match its
	// bytes (a torn write after a machine crash, a damaged disk) or that
	// is too short to hold one. It also matches ErrState.
	ErrJournalDamaged = fmt.Errorf("%w: journal damaged (torn or corrupted)", ErrState)
	// ErrGenesis: the genesis validators cannot seed a state.
	ErrGenesis = errors.New("governance: bad genesis")
	// ErrAmbiguous: an ID prefix matches more than one pending proposal.
	ErrAmbiguous = errors.New("governance: ambiguous proposal ID prefix")
	// ErrNoHistory: the journal holds no state for that height.
	ErrNoHistory = errors.New("governance: no state recorded for that height")
	// ErrKeyFile: a FilePV key file that cannot be read or holds no
	// ed25519 key.
	ErrKeyFile = errors.New("governance: bad validator key file")

	// ErrWouldHalt: the change would leave the online validators with 2/3
	// of the power or less. Returned by Preview as a *HaltError.
	ErrWouldHalt = errors.New("governance: the change would halt the chain")
)

// HaltError says why a change would halt the chain: after it, blocks need
// signatures from validators holding more than 2/3 of the power, and the
// validators known to be offline leave too little.
type HaltError struct {
	Change     string   // "adding d", "removing c", "rotating b's key"
	Validators int      // after the change
	Total      int64    // total power after the change
	Need       int64    // power that must sign: more than 2/3 of Total
	Online     int64    // power of the validators not offline
	Offline    []string // members offline after the change, sorted
	// Equal: every validator has the same power, so the message can count
	// validators, which is how operators think of it.
	Equal bool
}

func (e *HaltError) Error() string {
	if e.Equal && e.Validators > 0 {
		per := e.Total / int64(e.Validators)
		return fmt.Sprintf("after %s, %d of the %d validators must sign every block, but %s %s offline and only %d can: the chain would halt",
			e.Change, ceilDiv(e.Need, per), e.Validators, joinNames(e.Offline), isAre(len(e.Offline)), e.Online/per)
	}
	return fmt.Sprintf("after %s, validators holding %d of the total power %d must sign every block, but %s %s offline and the rest hold %d: the chain would halt",
		e.Change, e.Need, e.Total, joinNames(e.Offline), isAre(len(e.Offline)), e.Online)
}

func (e *HaltError) Unwrap() error { return ErrWouldHalt }

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// joinNames renders "b", "b and c", "b, c and d".
func joinNames(names []string) string {
	switch len(names) {
	case 0:
		return "none"
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " and " + names[len(names)-1]
}

func isAre(n int) string {
	if n == 1 {
		return "is"
	}
	return "are"
}
