// Package governance decides the BFT chain's validator set by a vote of its
// members: proposals to add, remove or rotate a member's validator, votes on
// them, and the CometBFT validator updates a passed proposal yields.
//
// Why on chain: the members are companies that do not fully trust each
// other, nor whoever hosts the registrar. No single party may add a
// validator, drop a competitor or halt the chain, so a change happens only
// when validators holding more than 2/3 of the power have signed it, and
// every node reaches that decision at the same height from the same blocks.
//
// Why pure: everything here is a function of (state, transaction, height).
// There is no clock, no disk and no network, so every node computes the
// same bytes, a replay after a crash recomputes them, and each rule is
// pinned by a table test. The ABCI application (internal/consensus) calls
// Expire and Apply in FinalizeBlock, folds State.Hash into its app hash and
// persists State.Marshal; the CLI builds and signs transactions here and
// renders what the app's query returns.
//
// The pieces:
//   - tx.go: the transaction format (a leading TxPrefix byte, then strict
//     RLP), proposal IDs and the bytes a validator key signs.
//   - state.go, codec.go: members, pending proposals, their encoding and hash.
//   - apply.go: Apply and Expire, the only ways the state changes.
//   - block.go: what each ABCI call needs (Block for FinalizeBlock, Select
//     for PrepareProposal, Verify for ProcessProposal, Check for CheckTx)
//     and the result codes, so wiring the app is mechanical.
//   - tolerance.go: how many validators a set may lose, and the preview
//     that refuses a change which would halt the chain given who is offline.
//   - genesis.go: the first members, from the CometBFT genesis validators.
//   - sign.go, render.go: the CLI's helpers (sign with a FilePV key file,
//     show pending proposals).
//   - journal.go: the state as of any recent height, for the app's restart
//     and replay.
package governance
