// Package consensus runs a member's share of the chain's consensus: an
// in-process CometBFT v1.0.1 node and the ABCI++ application that drives
// one geth v1.17 over the Engine API.
//
// Why this shape: geth since 1.14 makes no block on its own; it builds,
// checks and imports blocks only when a consensus client tells it to. We
// want blocks that are final the moment they appear and a chain that keeps
// going with one member in four lost, so the ordering comes from CometBFT
// (BFT, instant finality) and every CometBFT height carries exactly one
// execution-layer block: EL block number == CometBFT height, EL genesis =
// block 0, and the app hash of a height folds the EL block's hash with the
// governance state (the members and their validators, decided by their
// votes: internal/governance), whose transactions follow the payload in a
// block.
//
// The pieces, from pure to I/O:
//   - rules.go: what a proposal must look like (timestamp, prevRandao,
//     parent beacon root derived from the height and the parent), as pure
//     functions under table tests.
//   - payload.go: the one ABCI transaction of a block, an RLP encoding of
//     the EL block and its execution requests; the decoder is fuzzed.
//   - engine.go: the Engine API surface the app needs, over go-ethereum's
//     own rpc client and JWT auth, behind a small interface tests wrap.
//   - app.go: the ABCI++ application (PrepareProposal builds a payload with
//     geth, ProcessProposal has geth check it, FinalizeBlock imports it and
//     moves geth's head, safe and finalized marks to it).
//   - govern.go: the governance state the app keeps beside geth's (the
//     committed state for CheckTx and the query, the journal written at
//     Commit and read by Info after a restart).
//   - node.go, peers.go, status.go: the CometBFT node around the app, its
//     exact peer set (SetPeers) and a status snapshot for dashboards.
//
// Nothing but geth's own database holds the execution state, and the
// governance journal the members' state: Info answers with the lower of
// geth's head and the journal's last height, so CometBFT's handshake
// replays whatever blocks either lost in a crash, with no manual step.
//
// Running geth for it: --authrpc.* with the JWT secret, --syncmode full,
// and, for crash recovery, --state.scheme hash --gcmode archive (given to
// `geth init` as well). With the default path scheme geth keeps recent
// state (on a quiet chain: everything since genesis) in memory; a kill -9
// rewinds it to the state on disk and, when its header chain is ahead of
// that, switches it to snap sync, in which it imports no payload until a
// snap sync from its devp2p peers completes. The app then names the head
// in a fork choice update, as any consensus client does, but geth's snap
// sync failed on a chain of a few dozen blocks in our tests ("Beacon
// backfilling failed ... layer stale"), and the member stays out until
// geth is restarted with its state intact.
package consensus
