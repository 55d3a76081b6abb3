// Package devnet runs a whole consortium on one machine: the logic behind
// `consortium devnet`. It exists so that a newcomer sees a consortium chain
// form with one command: members, their nodes peering across member
// boundaries, and blocks sealed by every member.
//
// Start creates (or reuses) a consortium with consortiuminit in a work
// directory, then starts, all on 127.0.0.1: the registrar (in this process,
// on SQLite), one discovery bootnode per member (in this process), and per
// member a signer, a transaction node and a public node, each a geth v1.13.15
// child process (the last geth that seals Clique blocks) with its agent
// running in this process beside it. Every geth runs in its own process
// group and dies with this process (Pdeathsig); Close stops them all.
//
// While it runs it reports, as they happen, the lines an operator wants:
// nodes registering, peers connecting, the mesh complete, each new block with
// the member whose signer sealed it, and the URLs to look at.
//
// A member joins a running devnet through AddMember: `member add` at the
// registrar, one clique_propose vote from every existing signer, then the new
// member's nodes start and its signer seals once the votes are in. See
// docs/devnet.md.
package devnet
