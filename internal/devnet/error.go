package devnet

import "errors"

// Each message says what to do about it, in one line, because the CLI prints
// it as is. Details (a path, a port, a name) are appended in parentheses.
var (
	// ErrBadNodes is returned for a --nodes spec that cannot be parsed.
	ErrBadNodes = errors.New(`bad --nodes: give roles as "bootnode,validator,tx,public" or "validator=1,tx=2", optionally for one member as "a:validator,public"`)
	// ErrUnknownMember is returned for a member named in --nodes or asked
	// for by a command that the consortium does not have.
	ErrUnknownMember = errors.New("unknown member: name only members of the consortium (see consortium.json)")
	// ErrNoSigner is returned when a member would run no validator.
	ErrNoSigner = errors.New("a member without a validator: give every member validator=1 or more, or its share of blocks is never sealed")
	// ErrOneValidator is returned when a member of a BFT devnet would run
	// other than one validator: a member has one CometBFT key, one vote.
	ErrOneValidator = errors.New("a BFT member runs exactly one validator (one CometBFT key, one vote): give validator=1")
	// ErrNoPublic is returned when a member of a multi-member devnet would
	// run no public node, so nothing could carry its blocks to the others.
	ErrNoPublic = errors.New("a member without a public node: give every member public=1 or more, or it never peers with the other members")
	// ErrDirMismatch is returned when the work directory holds a consortium
	// with other members or fewer nodes than asked for.
	ErrDirMismatch = errors.New("the work directory holds a different consortium: leave --members and --nodes out to reuse it as it is, or pick a new --dir")
	// ErrNotConsortium is returned when the work directory is neither empty
	// nor a consortium.
	ErrNotConsortium = errors.New("the work directory is not empty and holds no consortium.json: pick a new or empty --dir")
	// ErrLocked is returned when another devnet runs on the same directory.
	ErrLocked = errors.New("another devnet is running on this directory: stop it (Ctrl-C) or pick another --dir")
	// ErrPortTaken is returned when a port the devnet needs is in use.
	ErrPortTaken = errors.New("a port is in use: stop what listens there (another devnet?) or pass another --base-port / --registrar-listen")
	// ErrBadBasePort is returned for a base port whose ranges do not fit.
	ErrBadBasePort = errors.New("bad --base-port: give a port low enough for the node port ranges above it")
	// ErrBadConsensus is returned for an unknown --consensus.
	ErrBadConsensus = errors.New("bad --consensus: give bft (the default: CometBFT on geth v1.17.10) or clique (geth v1.13.15)")
	// ErrGethBuild is returned when geth could not be built.
	ErrGethBuild = errors.New("geth could not be built: check Go and access to the Go module proxy, or pass --geth PATH to a built geth (v1.17.10 for bft, v1.13.15 for --consensus clique)")
	// ErrBadGeth is returned when the geth binary does not run or is not
	// the release line the consensus kind needs.
	ErrBadGeth = errors.New("not a usable geth: pass --geth PATH to geth v1.17.10 (bft) or v1.13.15 (--consensus clique, the last geth that seals Clique blocks), or leave --geth out to build it")
	// ErrNodeStart is returned when a node does not come up.
	ErrNodeStart = errors.New("a node did not start: read its log (path below) and fix the cause, then run again")
	// ErrNotRunning is returned by AddMember when no devnet runs on the
	// directory.
	ErrNotRunning = errors.New("no devnet is running on this directory: start `consortium devnet` first, with the same --dir")
	// ErrMemberExists is returned by AddMember for a name already in use.
	ErrMemberExists = errors.New("that member exists already: pick a new name")
	// ErrJoinTimeout is returned when a new member's signer was not voted in
	// or did not seal in time.
	ErrJoinTimeout = errors.New("the new member's signer did not start sealing in time: check that the existing signers are running and read the devnet log")
	// ErrFollowTimeout is returned when a new member's nodes of a BFT
	// devnet did not catch up with the chain in time.
	ErrFollowTimeout = errors.New("the new member's nodes did not catch up with the final chain in time: read their logs and devnet.log (the consensus nodes)")
	// ErrNoCLI is returned when a member joins a BFT devnet that was given
	// no consortium binary to cast the validators' votes with.
	ErrNoCLI = errors.New("no consortium binary to cast the votes with: run the devnet as `consortium devnet` (or set Config.CLI)")
	// ErrVote is returned when the vote that adds a new member's validator
	// to the set did not pass, or the new validator did not sign in time.
	ErrVote = errors.New("the validators' vote did not add the new member's validator: read the vote lines above and devnet.log (the consensus nodes)")
)
