// Package consortiuminit creates a consortium: the logic behind
// `consortium init`. It makes every key and credential the consortium starts
// with, and a Clique genesis whose signer set is the members' validators, so
// no single member controls block production.
//
// Run writes, under Config.Out:
//
//	genesis.json                          Clique genesis for geth v1.13.15
//	consortium.json                       manifest: public facts only (Manifest)
//	registrar/seed.json                   credential hashes for `consortium registrar --seed`
//	registrar/admin.credential            the administrator's credential (secret)
//	members/<name>/credential             the member's registrar credential (secret)
//	members/<name>/<role>-<n>/nodekey     the node's devp2p key, for geth --nodekey (secret)
//	members/<name>/validator-<n>/keystore/   the signer account, for geth --keystore (encrypted)
//	members/<name>/validator-<n>/password    its password, for geth --password (secret)
//
// Secrets are files of mode 0600 in directories of mode 0700; each member is
// meant to receive only its own members/<name>/ directory. Nothing Run
// returns or logs is secret.
//
// Everything is generated in a staging directory inside Out and moved into
// place at the end, so a failure leaves no half-made consortium behind.
package consortiuminit
