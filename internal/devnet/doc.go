// Package devnet runs a whole consortium on one machine: the logic behind
// `consortium devnet`. It exists so that a newcomer sees a consortium chain
// form with one command: members, their nodes peering across member
// boundaries, and blocks made by every member.
//
// Start creates (or reuses) a consortium with consortiuminit in a work
// directory, then starts, all on 127.0.0.1: the registrar (in this process,
// on SQLite), one discovery bootnode per member (in this process), and per
// member a validator, a transaction node and a public node, each a geth
// child process with its agent running in this process beside it. Every
// geth runs in its own process group and dies with this process
// (Pdeathsig); Close stops them all.
//
// Two chains: BFT, the default (geth v1.17.10, four members), where a
// consensus node (internal/consensus: CometBFT and the app that drives geth
// over the Engine API) runs in this process beside every geth and each
// block is final when it appears; and Clique (geth v1.13.15, the last geth
// that seals Clique blocks on its own), kept as --consensus clique.
//
// While it runs it reports, as they happen, the lines an operator wants:
// nodes registering, peers connecting, the mesh complete, each new block
// with the member that made it, and the URLs to look at. On the BFT chain
// it also raises an alarm if two nodes ever hold different blocks at one
// height.
//
// A member joins a running devnet through AddMember: `member add` at the
// registrar, then its nodes start. On Clique every existing signer first
// votes its signer in with clique_propose; on BFT its nodes join as CometBFT
// full nodes, since the validator set changes only by a vote on chain. See
// docs/devnet.md.
package devnet
