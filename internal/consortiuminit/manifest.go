package consortiuminit

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
	"github.com/consortium/consortium/internal/noderecord"
	"github.com/ethereum/go-ethereum/common"
)

// Role is what a node does for its member: the registrar's roles, whose
// values are its wire names (docs/api.md, POST /v1/nodes).
type Role = noderecord.Role

// The node roles.
const (
	RoleBootnode  = noderecord.RoleBootnode
	RoleValidator = noderecord.RoleValidator
	RoleTx        = noderecord.RoleTx
	RolePublic    = noderecord.RolePublic
)

// Names of what Run writes under Out. Paths in the manifest are relative to
// Out, so the directory can be moved or split up and handed to each member.
const (
	GenesisFile         = "genesis.json"
	CometGenesisFile    = "cometbft-genesis.json"
	ManifestFile        = "consortium.json"
	MembersDir          = "members"
	RegistrarDir        = "registrar"
	SeedFile            = "registrar/seed.json"
	AdminCredentialFile = "registrar/admin.credential"
	// DNSKeyFile signs every member's node tree: the registrar's
	// --dns-key, the same file for every replica.
	DNSKeyFile = "registrar/dnstree.key"
	// dnsFlagFile, in each member's directory, is the geth flag that finds
	// the member's nodes through the registrar's DNS, with no agent.
	dnsFlagFile     = "discovery-dns.flag"
	credentialFile  = "credential"
	nodekeyFile     = "nodekey"
	keystoreDir     = "keystore"
	passwordFile    = "password"
	jwtSecretFile   = "jwtsecret"
	cometHomeDir    = "cometbft"
	feeRecipientDir = "fee-recipient"
)

// owned is everything Run writes at the top of Out, and all that Force replaces.
var owned = []string{GenesisFile, CometGenesisFile, ManifestFile, MembersDir, RegistrarDir}

// Manifest is consortium.json: the public facts of a consortium, for the
// operator and for the tools that deploy it. It never holds a secret, only
// the paths of the files that do.
//
// A manifest without "consensus" was written before BFT existed and is read
// as Clique (see UnmarshalJSON).
type Manifest struct {
	Consensus Consensus `json:"consensus"`
	ChainID   uint64    `json:"chain_id"`
	// Period, Epoch and Signers are Clique's; a BFT manifest leaves them out.
	Period  uint64           `json:"period,omitempty"`
	Epoch   uint64           `json:"epoch,omitempty"`
	Signers []common.Address `json:"signers,omitempty"` // ascending, as in extraData
	// Genesis is geth's genesis: Clique for v1.13.15, or post-merge for v1.17.
	Genesis string `json:"genesis"`
	// GenesisHash (BFT) is the hash of geth's genesis block: the first
	// parent the consensus process builds on, and the CometBFT app_hash.
	GenesisHash *common.Hash `json:"genesis_hash,omitempty"`
	// CometGenesis and CometChainID are BFT's: the CometBFT genesis (the
	// validator set) and the chain id it names, which every vote signs.
	CometGenesis string `json:"cometbft_genesis,omitempty"`
	CometChainID string `json:"cometbft_chain_id,omitempty"`
	Seed         string `json:"registrar_seed"`
	// DNSDomain and DNSKey are the registrar's --dns-domain and --dns-key:
	// the node trees' domain and the file of the key that signs them.
	DNSDomain string           `json:"dns_domain"`
	DNSKey    string           `json:"dns_key_file"`
	Members   []Member         `json:"members"`
	Prefund   []common.Address `json:"prefund,omitempty"`
}

// UnmarshalJSON reads a manifest, taking a missing consensus as Clique: the
// only kind that existed before the field did. An unknown kind is refused,
// so no tool runs a chain it does not understand.
func (m *Manifest) UnmarshalJSON(b []byte) error {
	type plain Manifest // without this method
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if p.Consensus == "" {
		p.Consensus = ConsensusClique
	}
	if _, err := ParseConsensus(string(p.Consensus)); err != nil {
		return err
	}
	*m = Manifest(p)
	return nil
}

// Member is one member's entry in the manifest.
type Member struct {
	Name       string `json:"name"`
	Credential string `json:"credential_file"` // the file holding it, not the credential
	// Validator (BFT) is the member's CometBFT validator: how a block's
	// proposer or a commit's signer maps back to the member.
	Validator *Validator `json:"validator,omitempty"`
	// FeeRecipient (BFT) receives the fees of the blocks the member's
	// validator proposes. Its key is kept as Clique's signer accounts are
	// (a keystore and its password), so the member can spend what it earns
	// and has a funded account to send transactions from.
	FeeRecipient *Account `json:"fee_recipient,omitempty"`
	Nodes        []Node   `json:"nodes"`
	// DiscoveryDNS is the enrtree:// URL of the member's node tree, as the
	// registrar signs and serves it with --dns-listen: a client with no
	// agent (any Ethereum client) finds the member's nodes with
	// --discovery.dns <DiscoveryDNS>. DiscoveryDNSFlag is the file holding
	// that flag, in the member's directory.
	DiscoveryDNS     string `json:"discovery_dns"`
	DiscoveryDNSFlag string `json:"discovery_dns_flag_file"`
}

// Validator is a member's entry in the CometBFT validator set.
type Validator struct {
	// Node is the member's node that holds the key, e.g. "validator-1".
	Node string `json:"node"`
	// Address is the validator address as CometBFT shows it (40 upper-case
	// hex characters): a block header's proposer_address, a commit
	// signature's validator_address.
	Address cmtbytes.HexBytes `json:"address"`
	// PubKey is the raw 32-byte ed25519 public key (base64 in JSON, as the
	// value of pub_key in the CometBFT genesis).
	PubKey []byte `json:"pub_key_ed25519"`
	// Power is the voting power; every member has the same.
	Power int64 `json:"power"`
}

// Account is an Ethereum account whose key Run wrote encrypted.
type Account struct {
	Address  common.Address `json:"address"`
	Keystore string         `json:"keystore_dir"`  // for geth --keystore, or keystore.DecryptKey
	Password string         `json:"password_file"` // its password (secret)
}

// Node is one node's entry in the manifest.
type Node struct {
	Name string `json:"name"` // unique within the member: "<role>-<n>"
	Role Role   `json:"role"`
	// ID is the node ID (enode.ID, 64 hex characters), as the registrar keys it.
	ID string `json:"id"`
	// Pubkey is the 128 hex characters of an enode URL: enode://Pubkey@host:port.
	Pubkey  string `json:"enode_pubkey"`
	Dir     string `json:"dir"`
	Nodekey string `json:"nodekey_file"` // for geth --nodekey
	// Signer, Keystore and Password are set for Clique validators only.
	Signer   *common.Address `json:"signer,omitempty"`
	Keystore string          `json:"keystore_dir,omitempty"`  // for geth --keystore
	Password string          `json:"password_file,omitempty"` // for geth --password
	// CometNodeID, CometHome and JWTSecret are set in a BFT consortium for
	// every node that runs geth and a consensus process: all but bootnodes.
	// CometNodeID is the CometBFT P2P node ID (40 lower-case hex), as in a
	// peer address "id@host:port"; CometHome is a CometBFT home directory
	// (config/node_key.json, config/genesis.json and, for the validator,
	// config/priv_validator_key.json and data/priv_validator_state.json).
	CometNodeID string `json:"cometbft_node_id,omitempty"`
	CometHome   string `json:"cometbft_home,omitempty"`
	// JWTSecret is the Engine API secret shared by the node's geth
	// (--authrpc.jwtsecret) and its consensus process.
	JWTSecret string `json:"jwtsecret_file,omitempty"`
}

// Result is what Run wrote. Like the manifest it holds public facts and
// paths only, so it is safe to print and log; the secrets stay in their files.
type Result struct {
	// Out is the directory written, as given (after defaults).
	Out string
	// Manifest is the content of consortium.json; its paths are relative to Out.
	Manifest
}

// Path turns a path from the manifest into one usable from the working
// directory.
func (r *Result) Path(rel string) string { return filepath.Join(r.Out, filepath.FromSlash(rel)) }

// AdminCredential reads the administrator's credential from the file Run
// wrote, for a caller that has been asked to show it (the CLI prints it once,
// on request); nothing else in Result carries a secret.
func (r *Result) AdminCredential() (string, error) {
	b, err := os.ReadFile(r.Path(AdminCredentialFile))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// String is a summary for the operator: where things are and who signs.
func (r *Result) String() string {
	var b strings.Builder
	switch r.Consensus {
	case ConsensusBFT:
		fmt.Fprintf(&b, "consortium written to %s: chain id %d, BFT (CometBFT chain %s), %d validators of equal power\n",
			r.Out, r.ChainID, r.CometChainID, len(r.Members))
	default:
		fmt.Fprintf(&b, "consortium written to %s: chain id %d, %d-second Clique blocks, %d signers\n",
			r.Out, r.ChainID, r.Period, len(r.Signers))
	}
	fmt.Fprintf(&b, "  genesis:         %s\n", r.Path(r.Genesis))
	if r.CometGenesis != "" {
		fmt.Fprintf(&b, "  bft genesis:     %s\n", r.Path(r.CometGenesis))
	}
	fmt.Fprintf(&b, "  manifest:        %s\n", r.Path(ManifestFile))
	fmt.Fprintf(&b, "  registrar seed:  %s\n", r.Path(r.Seed))
	fmt.Fprintf(&b, "  admin credential (secret): %s\n", r.Path(AdminCredentialFile))
	for _, m := range r.Members {
		dir := r.Path(MembersDir + "/" + m.Name)
		if m.Validator != nil {
			fee := ""
			if m.FeeRecipient != nil {
				fee = ", fee recipient " + m.FeeRecipient.Address.Hex()
			}
			fmt.Fprintf(&b, "  member %s: %d nodes in %s, validator %s%s\n", m.Name, len(m.Nodes), dir, m.Validator.Address, fee)
			m.writeDNS(&b)
			continue
		}
		var signers []string
		for _, n := range m.Nodes {
			if n.Signer != nil {
				signers = append(signers, n.Signer.Hex())
			}
		}
		fmt.Fprintf(&b, "  member %s: %d nodes in %s, signers %s\n",
			m.Name, len(m.Nodes), dir, strings.Join(signers, ", "))
		m.writeDNS(&b)
	}
	if r.DNSKey != "" {
		fmt.Fprintf(&b, "  node trees' key (secret): %s (registrar --dns-listen :53 --dns-domain %s --dns-key <it>, the same file on every replica)\n", r.Path(r.DNSKey), r.DNSDomain)
	}
	b.WriteString("  hand each member only its own members/<name>/ directory: it holds that member's secrets\n")
	return b.String()
}

// writeDNS prints the member's agent-less discovery flag.
func (m Member) writeDNS(b *strings.Builder) {
	if m.DiscoveryDNS != "" {
		fmt.Fprintf(b, "    any client, no agent: --discovery.dns %s\n", m.DiscoveryDNS)
	}
}
