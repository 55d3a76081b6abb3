package consortiuminit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

// Role is what a node does for its member. The values are the registrar's
// wire names (docs/api-contract-draft.md, POST /v1/nodes).
type Role string

// The node roles.
const (
	RoleBootnode  Role = "bootnode"
	RoleValidator Role = "validator"
	RoleTx        Role = "tx"
	RolePublic    Role = "public"
)

// Names of what Run writes under Out. Paths in the manifest are relative to
// Out, so the directory can be moved or split up and handed to each member.
const (
	GenesisFile         = "genesis.json"
	ManifestFile        = "consortium.json"
	MembersDir          = "members"
	RegistrarDir        = "registrar"
	SeedFile            = "registrar/seed.json"
	AdminCredentialFile = "registrar/admin.credential"
	credentialFile      = "credential"
	nodekeyFile         = "nodekey"
	keystoreDir         = "keystore"
	passwordFile        = "password"
)

// owned is everything Run writes at the top of Out, and all that Force replaces.
var owned = []string{GenesisFile, ManifestFile, MembersDir, RegistrarDir}

// Manifest is consortium.json: the public facts of a consortium, for the
// operator and for the tools that deploy it. It never holds a secret, only
// the paths of the files that do.
type Manifest struct {
	ChainID uint64           `json:"chain_id"`
	Period  uint64           `json:"period"`
	Epoch   uint64           `json:"epoch"`
	Signers []common.Address `json:"signers"` // ascending, as in extraData
	Genesis string           `json:"genesis"`
	Seed    string           `json:"registrar_seed"`
	Members []Member         `json:"members"`
	Prefund []common.Address `json:"prefund,omitempty"`
}

// Member is one member's entry in the manifest.
type Member struct {
	Name       string `json:"name"`
	Credential string `json:"credential_file"` // the file holding it, not the credential
	Nodes      []Node `json:"nodes"`
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
	// Signer, Keystore and Password are set for validators only.
	Signer   *common.Address `json:"signer,omitempty"`
	Keystore string          `json:"keystore_dir,omitempty"`  // for geth --keystore
	Password string          `json:"password_file,omitempty"` // for geth --password
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
	fmt.Fprintf(&b, "consortium written to %s: chain id %d, %d-second Clique blocks, %d signers\n",
		r.Out, r.ChainID, r.Period, len(r.Signers))
	fmt.Fprintf(&b, "  genesis:         %s\n", r.Path(r.Genesis))
	fmt.Fprintf(&b, "  manifest:        %s\n", r.Path(ManifestFile))
	fmt.Fprintf(&b, "  registrar seed:  %s\n", r.Path(r.Seed))
	fmt.Fprintf(&b, "  admin credential (secret): %s\n", r.Path(AdminCredentialFile))
	for _, m := range r.Members {
		var signers []string
		for _, n := range m.Nodes {
			if n.Signer != nil {
				signers = append(signers, n.Signer.Hex())
			}
		}
		fmt.Fprintf(&b, "  member %s: %d nodes in %s, signers %s\n",
			m.Name, len(m.Nodes), r.Path(MembersDir+"/"+m.Name), strings.Join(signers, ", "))
	}
	b.WriteString("  hand each member only its own members/<name>/ directory: it holds that member's secrets\n")
	return b.String()
}
