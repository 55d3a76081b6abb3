package consortiuminit

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/dnstree"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// stagingPrefix names the directory inside Out that Run fills before
// moving its content into place.
const stagingPrefix = ".consortium-init-"

// Modes of what Run writes: secrets are readable by their owner only.
const (
	secretMode  fs.FileMode = 0o600
	publicMode  fs.FileMode = 0o644
	privateDirs fs.FileMode = 0o700
)

// seedFile is registrar/seed.json, as read by `consortium registrar --seed`
// (docs/operations.md, "Running it"). Hashes only.
type seedFile struct {
	AdminHash string       `json:"admin_hash"`
	Members   []seedMember `json:"members"`
}

type seedMember struct {
	Name string `json:"name"`
	Hash string `json:"hash"`
}

// Run creates the consortium cfg describes. Every refusal (bad config,
// non-empty Out without Force) happens before anything is written. Keys and
// files are made in a staging directory and then moved into place with one
// rename per top-level entry, so a failure while generating leaves Out as it
// was (apart from directories Run created); only a failure among those last
// renames, under Force, could leave old and new entries side by side.
func Run(cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := prepareOut(cfg.Out, cfg.Force); err != nil {
		return nil, err
	}
	// Staging inside Out rather than beside it: Out is the one directory we
	// know to be ours, and a rename within it cannot cross file systems.
	stage, err := os.MkdirTemp(cfg.Out, stagingPrefix)
	if err != nil {
		return nil, unwritable(err)
	}
	defer os.RemoveAll(stage)

	w := &writer{root: stage}
	m, err := generate(cfg, w)
	if err != nil {
		return nil, err
	}
	if cfg.Force {
		// A run killed before its deferred clean-up leaves its staging
		// directory, secrets included; a forced run is the moment to drop it.
		stale, _ := filepath.Glob(filepath.Join(cfg.Out, stagingPrefix+"*"))
		for _, dir := range stale {
			if dir != stage {
				os.RemoveAll(dir)
			}
		}
	}
	for _, name := range owned {
		dst := filepath.Join(cfg.Out, name)
		if cfg.Force {
			// Also what this run does not write: a Clique run over a BFT
			// consortium must not leave its CometBFT genesis behind.
			if err := os.RemoveAll(dst); err != nil {
				return nil, unwritable(err)
			}
		}
		src := filepath.Join(stage, name)
		if _, err := os.Lstat(src); errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err := os.Rename(src, dst); err != nil {
			return nil, unwritable(err)
		}
	}
	res := &Result{Out: cfg.Out, Manifest: *m}
	for _, f := range w.written {
		cfg.Logger.Debug("wrote", "path", res.Path(f.rel), "mode", f.mode)
	}
	cfg.Logger.Info("consortium created", "out", cfg.Out, "consensus", res.Consensus, "chain_id", res.ChainID,
		"members", len(res.Members), "signers", len(res.Signers))
	return res, nil
}

// prepareOut makes sure out is a directory Run may fill.
func prepareOut(out string, force bool) error {
	fi, err := os.Stat(out)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(out, privateDirs); err != nil {
			return unwritable(err)
		}
		return nil
	case err != nil:
		return unwritable(err)
	case !fi.IsDir():
		return fmt.Errorf("%w (%s is not a directory)", ErrUnwritable, out)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return unwritable(err)
	}
	if len(entries) > 0 && !force {
		return fmt.Errorf("%w (%s)", ErrExists, out)
	}
	return nil
}

// generate makes every key and file under w and returns the manifest.
func generate(cfg Config, w *writer) (*Manifest, error) {
	m := &Manifest{
		Consensus: cfg.Consensus,
		ChainID:   cfg.ChainID,
		Genesis:   GenesisFile,
		Seed:      SeedFile,
		Prefund:   cfg.Prefund,
	}
	if cfg.Consensus == ConsensusClique {
		m.Period, m.Epoch = cfg.Period, Epoch
	} else {
		m.CometGenesis, m.CometChainID = CometGenesisFile, CometChainID(cfg.ChainID)
	}
	admin, err := auth.New(auth.Admin)
	if err != nil {
		return nil, err
	}
	seed := seedFile{AdminHash: auth.Hash(admin.Secret)}
	if err := w.mkdir(RegistrarDir); err != nil {
		return nil, err
	}
	if err := w.file(AdminCredentialFile, []byte(admin.String()+"\n"), secretMode); err != nil {
		return nil, err
	}
	if err := w.mkdir(MembersDir); err != nil {
		return nil, err
	}
	treeKey, err := crypto.GenerateKey()
	if err != nil {
		return nil, err
	}
	m.DNSDomain, m.DNSKey = cfg.DNSDomain, DNSKeyFile
	if err := w.file(DNSKeyFile, []byte(hex.EncodeToString(crypto.FromECDSA(treeKey))), secretMode); err != nil {
		return nil, err
	}
	for _, name := range cfg.Members {
		member, hash, err := generateMember(name, cfg, w)
		if err != nil {
			return nil, err
		}
		// What the registrar will serve, known now: the URL is the tree
		// key's public half and the member's zone, not the tree's content.
		member.DiscoveryDNS = dnstree.URL(&treeKey.PublicKey, dnstree.Zone(name, cfg.DNSDomain))
		member.DiscoveryDNSFlag = path.Join(MembersDir, name, dnsFlagFile)
		if err := w.file(member.DiscoveryDNSFlag, []byte("--discovery.dns "+member.DiscoveryDNS+"\n"), publicMode); err != nil {
			return nil, err
		}
		seed.Members = append(seed.Members, seedMember{Name: name, Hash: hash})
		m.Members = append(m.Members, *member)
	}

	switch cfg.Consensus {
	case ConsensusClique:
		if err := writeClique(cfg, m, w); err != nil {
			return nil, err
		}
	default:
		if err := writeBFT(cfg, m, w); err != nil {
			return nil, err
		}
	}
	if err := w.json(SeedFile, seed); err != nil {
		return nil, err
	}
	if err := w.json(ManifestFile, m); err != nil {
		return nil, err
	}
	return m, nil
}

// writeClique writes the Clique genesis, whose signers are the validators'
// accounts, and lists them in the manifest.
func writeClique(cfg Config, m *Manifest, w *writer) error {
	var signers []common.Address
	for _, mem := range m.Members {
		for _, n := range mem.Nodes {
			if n.Signer != nil {
				signers = append(signers, *n.Signer)
			}
		}
	}
	// The manifest lists signers as extraData does, so the two compare equal.
	var err error
	if m.Signers, err = ParseExtraData(ExtraData(signers)); err != nil {
		return err
	}
	genesis, err := genesisJSON(cfg.ChainID, cfg.Period, cfg.GasLimit, signers, cfg.Prefund, cfg.PrefundWei)
	if err != nil {
		return err
	}
	return w.file(GenesisFile, genesis, publicMode)
}

// generateMember writes one member's credential and nodes, and in a BFT
// consortium its fee-recipient account. It returns the member's manifest
// entry and the hash of its credential for the seed.
func generateMember(name string, cfg Config, w *writer) (*Member, string, error) {
	cred, err := auth.New(name)
	if err != nil {
		return nil, "", err
	}
	dir := path.Join(MembersDir, name)
	member := &Member{Name: name, Credential: path.Join(dir, credentialFile)}
	if err := w.mkdir(dir); err != nil {
		return nil, "", err
	}
	if err := w.file(member.Credential, []byte(cred.String()+"\n"), secretMode); err != nil {
		return nil, "", err
	}
	if cfg.Consensus == ConsensusBFT {
		// One account per member, not per validator node: fees are the
		// member's, whichever of its nodes proposed the block.
		feeDir := path.Join(dir, feeRecipientDir)
		if err := w.mkdir(feeDir); err != nil {
			return nil, "", err
		}
		if member.FeeRecipient, err = newAccount(feeDir, w); err != nil {
			return nil, "", err
		}
	}
	roles := cfg.NodesPerMember
	for _, rc := range []struct {
		role  Role
		count int
	}{
		{RoleBootnode, roles.Bootnodes},
		{RoleValidator, roles.Validators},
		{RoleTx, roles.Tx},
		{RolePublic, roles.Public},
	} {
		for i := 1; i <= rc.count; i++ {
			n, err := generateNode(dir, rc.role, i, w)
			if err != nil {
				return nil, "", err
			}
			if cfg.Consensus == ConsensusBFT && runsConsensus(n.Role) {
				v, err := generateBFTNode(n, w)
				if err != nil {
					return nil, "", err
				}
				if v != nil {
					member.Validator = v
				}
			} else if cfg.Consensus == ConsensusClique && n.Role == RoleValidator {
				// The signer account is a key of its own, not the node key:
				// it can then be moved to another node, or to a remote
				// signer, without the node's identity changing with it.
				acct, err := newAccount(n.Dir, w)
				if err != nil {
					return nil, "", err
				}
				n.Signer, n.Keystore, n.Password = &acct.Address, acct.Keystore, acct.Password
			}
			member.Nodes = append(member.Nodes, *n)
		}
	}
	return member, auth.Hash(cred.Secret), nil
}

// generateNode writes one node's devp2p key.
func generateNode(memberDir string, role Role, i int, w *writer) (*Node, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return nil, err
	}
	name := fmt.Sprintf("%s-%d", role, i)
	dir := path.Join(memberDir, name)
	n := &Node{
		Name:    name,
		Role:    role,
		ID:      enode.PubkeyToIDV4(&key.PublicKey).String(),
		Pubkey:  hex.EncodeToString(crypto.FromECDSAPub(&key.PublicKey)[1:]),
		Dir:     dir,
		Nodekey: path.Join(dir, nodekeyFile),
	}
	if err := w.mkdir(dir); err != nil {
		return nil, err
	}
	// 64 hex characters and no newline, exactly as crypto.SaveECDSA writes
	// it and geth --nodekey reads it.
	if err := w.file(n.Nodekey, []byte(hex.EncodeToString(crypto.FromECDSA(key))), secretMode); err != nil {
		return nil, err
	}
	return n, nil
}

// newAccount makes an Ethereum account under dir: dir/keystore holding its
// encrypted key, for geth --keystore, and dir/password, for geth --password.
func newAccount(dir string, w *writer) (*Account, error) {
	var pw [32]byte
	if _, err := rand.Read(pw[:]); err != nil {
		return nil, err
	}
	password := base64.RawURLEncoding.EncodeToString(pw[:])
	a := &Account{Password: path.Join(dir, passwordFile), Keystore: path.Join(dir, keystoreDir)}
	// No trailing newline: geth --password strips one, but a tool that reads
	// the file whole would not.
	if err := w.file(a.Password, []byte(password), secretMode); err != nil {
		return nil, err
	}
	if err := w.mkdir(a.Keystore); err != nil {
		return nil, err
	}
	// Light scrypt parameters: the password is 256 random bits, so a slow
	// KDF would add seconds per account and no safety.
	acct, err := keystore.StoreKey(w.abs(a.Keystore), password, keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		return nil, unwritable(err)
	}
	w.written = append(w.written, written{rel: path.Join(a.Keystore, filepath.Base(acct.URL.Path)), mode: secretMode})
	a.Address = acct.Address
	return a, nil
}

// writer creates files under root, with exact modes whatever the umask.
type writer struct {
	root    string
	written []written
}

type written struct {
	rel  string
	mode fs.FileMode
}

func (w *writer) abs(rel string) string { return filepath.Join(w.root, filepath.FromSlash(rel)) }

func (w *writer) mkdir(rel string) error {
	p := w.abs(rel)
	if err := os.Mkdir(p, privateDirs); err != nil {
		return unwritable(err)
	}
	return unwritable(os.Chmod(p, privateDirs))
}

func (w *writer) file(rel string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(w.abs(rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return unwritable(err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return unwritable(err)
	}
	w.written = append(w.written, written{rel: rel, mode: mode})
	return nil
}

func (w *writer) json(rel string, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	return w.file(rel, b.Bytes(), publicMode)
}

// unwritable wraps a file-system error as ErrUnwritable; nil stays nil.
func unwritable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w (%v)", ErrUnwritable, err)
}
