// Package dnstree serves each member's peers as a signed EIP-1459 node tree
// over DNS, so that any Ethereum client (geth's --discovery.dns, Besu,
// Nethermind, Erigon, Reth) can find its member's nodes with no agent
// beside it.
//
// Why a tree per member: the directory's visibility rule (docs/api.md,
// "Peer policy") gives a member's nodes their own member's nodes by private
// endpoint and other members' public nodes by public endpoint. A tree is
// that answer, signed with the registrar's tree key (LoadOrCreateKey) and
// published at <member>.nodes.<domain>; a client configured with
// enrtree://<key>@<member>.nodes.<domain> (URL) verifies every entry it
// reads against the key, so a resolver in the path cannot forge peers.
//
// The parts, as in go-ethereum's p2p/dnsdisc: Trees is the pure core (it
// reads a Source, signs a tree per member and keeps them in an atomic
// snapshot; a tree is re-signed with a higher sequence number exactly when
// its member's answer changes); answer (answer.go) turns one DNS query and
// a snapshot into one reply with no I/O; Server is the thin network layer
// around it (UDP and TCP through github.com/miekg/dns, a per-address rate
// limit before any decoding, bounded TCP connections, and the access rule
// that keeps a member's private endpoints inside that member's networks).
//
// DNS has no credentials, so who may read a zone is decided by the
// querier's address (ServerConfig.Access): anyone else gets REFUSED, the
// same answer as for a name outside every zone, so a probe cannot even tell
// whether a member exists.
//
// Refresh: geth's p2p/dnsdisc client re-resolves a tree's root on its own
// schedule, Config.RecheckInterval, 30 minutes by default, whatever the
// TTL says; the TTLs here (RootTTL, 60 s by default) only keep resolvers in
// the path from holding a root longer than that. Tree entries are named by
// their hash, so they are immutable and cached longer (EntryTTL).
//
// Nothing the server answers brings that re-check forward for a client
// that has read the whole tree: the client keeps every entry it read in an
// LRU cache (1,000 entries) and walks the tree again from there, asking
// only for the root, on its schedule. Names of an older tree get NXDOMAIN
// here, which helps only a client still walking a tree when it changes:
// more than rootRecheckFailCount (5) failed lookups make it re-read the
// root at once.
package dnstree
