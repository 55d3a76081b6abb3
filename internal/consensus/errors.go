package consensus

import "errors"

// Sentinel errors. Callers and tests branch on them with errors.Is; the
// wrapped text says which value was wrong.
var (
	// ErrConfig: the Config cannot run a node (a missing file, a bad URL,
	// a JWT secret of the wrong size).
	ErrConfig = errors.New("consensus: bad config")
	// ErrBadPeer: a SetPeers address is not "id@host:port".
	ErrBadPeer = errors.New("consensus: bad peer address")
	// ErrNotStarted: the call needs a running node.
	ErrNotStarted = errors.New("consensus: node not started")

	// ErrDecode: an ABCI transaction is not a payload of ours.
	ErrDecode = errors.New("consensus: undecodable payload")

	// The payload rules (CheckPayload). Each names the field that broke
	// the rule, so a refused proposal's log line says why.
	ErrWrongNumber      = errors.New("consensus: payload number is not the height")
	ErrWrongParent      = errors.New("consensus: payload parent is not the last final block")
	ErrWrongTimestamp   = errors.New("consensus: payload timestamp breaks the rule")
	ErrWrongRandao      = errors.New("consensus: payload prevRandao breaks the rule")
	ErrWrongBeaconRoot  = errors.New("consensus: payload parent beacon root breaks the rule")
	ErrWithdrawals      = errors.New("consensus: payload has withdrawals")
	ErrRequestsMismatch = errors.New("consensus: payload requests do not match the header")
	// ErrNotReady: the app's own last final block is not the parent of
	// the height asked about (geth is behind or the app was not told).
	ErrNotReady = errors.New("consensus: app state is not at the parent height")

	// ErrGovernance: a proposal's governance transactions do not apply
	// in order on the committed governance state.
	ErrGovernance = errors.New("consensus: governance transactions refused")

	// ErrPayloadStatus: geth did not call the payload VALID.
	ErrPayloadStatus = errors.New("consensus: geth refused the payload")
	// ErrEngine: the Engine API could not be reached or answered nonsense.
	ErrEngine = errors.New("consensus: engine API")
)
