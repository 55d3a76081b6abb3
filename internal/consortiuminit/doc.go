// Package consortiuminit creates a consortium: the logic behind
// `consortium init`. It makes every key and credential the consortium starts
// with, and a chain on which no single member controls block production.
//
// Two kinds of chain (Config.Consensus):
//   - bft, the default: CometBFT v1.0.1 orders blocks and drives each
//     member's geth v1.17.10 over the Engine API; every member runs one
//     validator of equal power, so a block is final when it appears.
//   - clique, the legacy chain: geth v1.13.15 seals Clique blocks, and the
//     signer set is the members' validators.
//
// Run writes, under Config.Out, for both:
//
//	genesis.json                          geth's genesis: post-merge for v1.17.10 (bft), or Clique for v1.13.15
//	consortium.json                       manifest: public facts only (Manifest)
//	registrar/seed.json                   credential hashes for `consortium registrar --seed`
//	registrar/admin.credential            the administrator's credential (secret)
//	registrar/dnstree.key                 signs every member's node tree: `consortium registrar --dns-key` (secret)
//	members/<name>/credential             the member's registrar credential (secret)
//	members/<name>/discovery-dns.flag     geth's --discovery.dns enrtree://... for the member's tree: any client, no agent
//	members/<name>/<role>-<n>/nodekey     the node's devp2p key, for geth --nodekey (secret)
//
// for clique:
//
//	members/<name>/validator-<n>/keystore/   the signer account, for geth --keystore (encrypted)
//	members/<name>/validator-<n>/password    its password, for geth --password (secret)
//
// for bft (every node but bootnodes runs geth and a consensus process):
//
//	cometbft-genesis.json                                 CometBFT genesis: one validator per member
//	members/<name>/fee-recipient/keystore/                the member's fee recipient, funded (encrypted)
//	members/<name>/fee-recipient/password                 its password (secret)
//	members/<name>/<role>-<n>/jwtsecret                   Engine API secret, for geth --authrpc.jwtsecret (secret)
//	members/<name>/<role>-<n>/cometbft/config/node_key.json   CometBFT P2P key (secret)
//	members/<name>/<role>-<n>/cometbft/config/genesis.json    a copy of cometbft-genesis.json
//	members/<name>/validator-1/cometbft/config/priv_validator_key.json   the member's validator key (secret)
//	members/<name>/validator-1/cometbft/data/priv_validator_state.json   its last-signed state (secret)
//
// Secrets are files of mode 0600 in directories of mode 0700; each member is
// meant to receive only its own members/<name>/ directory. Nothing Run
// returns or logs is secret.
//
// Everything is generated in a staging directory inside Out and moved into
// place at the end, so a failure leaves no half-made consortium behind.
package consortiuminit
