package consortiuminit

import "errors"

// Each message says what to do about it, in one line, because the CLI prints
// it as is.
var (
	// ErrNoMembers is returned when Config.Members is empty.
	ErrNoMembers = errors.New("no members: name at least one member")
	// ErrBadMember is returned for a member name auth.ValidName refuses.
	ErrBadMember = errors.New(`bad member name: use 1-32 characters of a-z, 0-9 and '-', starting with a letter, other than "admin"`)
	// ErrDuplicateMember is returned when a member is named twice.
	ErrDuplicateMember = errors.New("member named twice: list each member once")
	// ErrBadRoles is returned for node counts that cannot make a chain.
	ErrBadRoles = errors.New("bad node counts: give each role 0-16 nodes per member, with at least one validator")
	// ErrBadConsensus is returned for a consensus kind other than bft and clique.
	ErrBadConsensus = errors.New(`bad consensus: use "bft" (the default) or "clique" (legacy, geth 1.13)`)
	// ErrOneValidator is returned for a BFT consortium whose members would
	// not each run exactly one validator.
	ErrOneValidator = errors.New("bad validator count for bft: give every member exactly one validator (one CometBFT key, one vote)")
	// ErrBadPrefund is returned for a zero prefund address or a negative amount.
	ErrBadPrefund = errors.New("bad prefund: give non-zero addresses and a positive amount of wei")
	// ErrExists is returned when the output directory already holds files
	// and Config.Force is not set.
	ErrExists = errors.New("output directory is not empty: choose a new directory, or pass --force to replace what init wrote there")
	// ErrUnwritable is returned when the output cannot be created or written.
	ErrUnwritable = errors.New("cannot write the output: make the output path a directory you may write to")
	// ErrBadExtraData is returned by ParseExtraData for bytes that are not a
	// Clique extraData.
	ErrBadExtraData = errors.New("bad Clique extraData: want 32 vanity bytes, 20 bytes per signer, then a 65-byte seal")
)
