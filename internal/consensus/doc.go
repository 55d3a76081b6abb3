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
// block 0, and the app hash of a height is the EL block's hash.
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
//   - node.go, peers.go, status.go: the CometBFT node around the app, its
//     exact peer set (SetPeers) and a status snapshot for dashboards.
//
// Nothing but geth's own database holds the execution state: Info answers
// with geth's head, so CometBFT's handshake replays whatever blocks geth
// lost in a crash, with no manual step.
package consensus
