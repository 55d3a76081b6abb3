package consortiuminit

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	cmtcfg "github.com/cometbft/cometbft/config"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core"
	"github.com/ethereum/go-ethereum/node"
)

// bftMemberLayout is every file Run writes for one member of a BFT
// consortium with the default roles; the keystore file's name varies.
var bftMemberLayout = []string{
	"bootnode-1/nodekey",
	"credential",
	"discovery-dns.flag",
	"fee-recipient/keystore/KEY",
	"fee-recipient/password",
	"public-1/cometbft/config/genesis.json",
	"public-1/cometbft/config/node_key.json",
	"public-1/jwtsecret",
	"public-1/nodekey",
	"tx-1/cometbft/config/genesis.json",
	"tx-1/cometbft/config/node_key.json",
	"tx-1/jwtsecret",
	"tx-1/nodekey",
	"validator-1/cometbft/config/genesis.json",
	"validator-1/cometbft/config/node_key.json",
	"validator-1/cometbft/config/priv_validator_key.json",
	"validator-1/cometbft/data/priv_validator_state.json",
	"validator-1/jwtsecret",
	"validator-1/nodekey",
}

func TestRunBFT(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "net")
	at := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	var logs bytes.Buffer
	members := []string{"acme", "globex", "initech", "umbrella"}
	res, err := Run(Config{
		Members:     members,
		Out:         out,
		ChainID:     4242,
		GenesisTime: at,
		Prefund:     []common.Address{high},
		Logger:      slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("result", func(t *testing.T) {
		if res.Consensus != ConsensusBFT || res.ChainID != 4242 || res.CometChainID != "consortium-4242" ||
			res.CometGenesis != CometGenesisFile || res.GenesisHash == nil {
			t.Errorf("result header: %+v", res.Manifest)
		}
		if res.Period != 0 || res.Epoch != 0 || len(res.Signers) != 0 {
			t.Errorf("Clique fields in a BFT result: period %d, epoch %d, signers %v", res.Period, res.Epoch, res.Signers)
		}
		if !strings.Contains(res.String(), "BFT") || !strings.Contains(res.String(), res.Members[0].Validator.Address.String()) {
			t.Errorf("summary does not name the consensus and the validators:\n%s", res.String())
		}
	})

	t.Run("layout", func(t *testing.T) {
		top, _ := os.ReadDir(out)
		var names []string
		for _, e := range top {
			names = append(names, e.Name())
		}
		if want := []string{CometGenesisFile, ManifestFile, GenesisFile, MembersDir, RegistrarDir}; !slices.Equal(names, want) {
			t.Errorf("out holds %v, want %v", names, want)
		}
		for _, m := range members {
			if got := memberFiles(t, res.Path(MembersDir+"/"+m)); !slices.Equal(got, bftMemberLayout) {
				t.Errorf("member %s has files\n%s\nwant\n%s", m, strings.Join(got, "\n"), strings.Join(bftMemberLayout, "\n"))
			}
		}
	})

	t.Run("modes", func(t *testing.T) { checkModes(t, out) })

	// The CometBFT genesis as every CometBFT node reads it at start.
	doc, err := cmttypes.GenesisDocFromFile(res.Path(res.CometGenesis))
	if err != nil {
		t.Fatal(err)
	}

	t.Run("cometbft genesis", func(t *testing.T) {
		if doc.ChainID != res.CometChainID || !doc.GenesisTime.Equal(at) || doc.InitialHeight != 1 ||
			!bytes.Equal(doc.AppHash, res.GenesisHash.Bytes()) {
			t.Errorf("genesis doc: chain %q, time %v, height %d, app hash %X", doc.ChainID, doc.GenesisTime, doc.InitialHeight, doc.AppHash)
		}
		vals, err := doc.Validators, doc.ConsensusParams.ValidateBasic()
		if err != nil {
			t.Fatal(err)
		}
		if len(vals) != len(members) {
			t.Fatalf("%d validators, want one per member (%d)", len(vals), len(members))
		}
		set := cmttypes.NewValidatorSet(nil)
		for i, v := range vals {
			if err := set.UpdateWithChangeSet([]*cmttypes.Validator{cmttypes.NewValidator(v.PubKey, v.Power)}); err != nil {
				t.Fatal(err)
			}
			m := res.Members[i]
			if v.Name != m.Name || v.Power != ValidatorPower || !bytes.Equal(v.Address, m.Validator.Address) ||
				!bytes.Equal(v.PubKey.Bytes(), m.Validator.PubKey) || m.Validator.Power != ValidatorPower {
				t.Errorf("validator %d: %+v, manifest says %s has %+v", i, v, m.Name, m.Validator)
			}
		}
		if set.Size() != len(members) || set.TotalVotingPower() != int64(len(members))*ValidatorPower {
			t.Errorf("validator set of %d with power %d, want %d of equal power", set.Size(), set.TotalVotingPower(), len(members))
		}
		if doc.ConsensusParams.Block.MaxBytes != CometMaxBlockBytes || doc.ConsensusParams.Block.MaxGas != -1 ||
			!slices.Equal(doc.ConsensusParams.Validator.PubKeyTypes, []string{cmttypes.ABCIPubKeyTypeEd25519}) {
			t.Errorf("consensus params %+v", doc.ConsensusParams)
		}
	})

	t.Run("cometbft homes", func(t *testing.T) {
		want, err := os.ReadFile(res.Path(res.CometGenesis))
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string]bool{}
		for _, m := range res.Members {
			for _, n := range m.Nodes {
				if n.Role == RoleBootnode {
					if n.CometHome != "" || n.CometNodeID != "" || n.JWTSecret != "" {
						t.Errorf("%s/%s: a bootnode with consensus files: %+v", m.Name, n.Name, n)
					}
					continue
				}
				// Where CometBFT itself looks in a home it is given.
				home := cmtcfg.DefaultConfig().SetRoot(res.Path(n.CometHome))
				key, err := p2p.LoadNodeKey(home.NodeKeyFile())
				if err != nil {
					t.Fatalf("%s/%s: %v", m.Name, n.Name, err)
				}
				if string(key.ID()) != n.CometNodeID || ids[n.CometNodeID] {
					t.Errorf("%s/%s: node key gives id %s, manifest says %s (or it is used twice)", m.Name, n.Name, key.ID(), n.CometNodeID)
				}
				ids[n.CometNodeID] = true
				// As persistent_peers and the registrar's "cmt" entry give it.
				if addr, err := p2p.NewNetAddressString(n.CometNodeID + "@127.0.0.1:26656"); err != nil || string(addr.ID) != n.CometNodeID {
					t.Errorf("%s/%s: node id %q in a peer address: %v", m.Name, n.Name, n.CometNodeID, err)
				}
				if got, err := os.ReadFile(home.GenesisFile()); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s/%s: genesis copy differs from %s (%v)", m.Name, n.Name, res.CometGenesis, err)
				}
				secret, err := node.ObtainJWTSecret(res.Path(n.JWTSecret)) // what geth --authrpc.jwtsecret calls
				if err != nil || len(secret) != 32 {
					t.Errorf("%s/%s: jwt secret: %d bytes, %v", m.Name, n.Name, len(secret), err)
				}
				_, statErr := os.Stat(home.PrivValidatorKeyFile())
				if n.Role != RoleValidator {
					if statErr == nil {
						t.Errorf("%s/%s: a full node with a validator key", m.Name, n.Name)
					}
					continue
				}
				pv := loadFilePV(t, home.PrivValidatorKeyFile(), home.PrivValidatorStateFile())
				if n.Name != m.Validator.Node || !bytes.Equal(pv.GetAddress(), m.Validator.Address) {
					t.Errorf("%s/%s: validator key %X, manifest says %s holds %s", m.Name, n.Name, pv.GetAddress(), m.Validator.Node, m.Validator.Address)
				}
				if s := pv.LastSignState; s.Height != 0 || s.Round != 0 || s.Step != 0 || s.Signature != nil {
					t.Errorf("%s/%s: a fresh validator has signed: %+v", m.Name, n.Name, s)
				}
				if !slices.ContainsFunc(doc.Validators, func(v cmttypes.GenesisValidator) bool {
					return bytes.Equal(v.Address, pv.GetAddress())
				}) {
					t.Errorf("%s/%s: validator %X not in the genesis", m.Name, n.Name, pv.GetAddress())
				}
			}
		}
	})

	t.Run("geth genesis", func(t *testing.T) {
		var g core.Genesis
		readJSON(t, res.Path(res.Genesis), &g)
		if g.Config.ChainID.Uint64() != 4242 || g.Config.TerminalTotalDifficulty.Sign() != 0 || g.Config.Clique != nil {
			t.Errorf("genesis config %s", g.Config)
		}
		if h := g.ToBlock().Hash(); h != *res.GenesisHash {
			t.Errorf("genesis hash %s, manifest says %s", h, res.GenesisHash)
		}
		want := map[common.Address]bool{high: true}
		for _, m := range res.Members {
			a := m.FeeRecipient
			if a == nil {
				t.Fatalf("member %s has no fee recipient", m.Name)
			}
			if addr := unlock(t, res.Path(a.Keystore), res.Path(a.Password)); addr != a.Address {
				t.Errorf("%s: fee recipient keystore holds %s, manifest says %s", m.Name, addr, a.Address)
			}
			want[a.Address] = true
		}
		for a := range want {
			if acct, ok := g.Alloc[a]; !ok || acct.Balance.Cmp(DefaultPrefundWei()) != 0 {
				t.Errorf("%s not funded with %s: %+v", a, DefaultPrefundWei(), acct)
			}
		}
		for a := range core.SystemContractAllocs() {
			if len(g.Alloc[a].Code) == 0 {
				t.Errorf("system contract %s missing", a)
			}
		}
	})

	t.Run("manifest is the result", func(t *testing.T) {
		var m Manifest
		readJSON(t, res.Path(ManifestFile), &m)
		if !reflect.DeepEqual(m, res.Manifest) {
			t.Errorf("consortium.json differs from the result:\n%+v\n%+v", m, res.Manifest)
		}
	})

	t.Run("no secret leaks", func(t *testing.T) {
		secrets := collectSecrets(t, res)
		public := map[string]string{"Result.String()": res.String(), "log": logs.String()}
		err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(out, p)
			if isPublic(filepath.ToSlash(rel)) {
				b, err := os.ReadFile(p)
				public[rel] = string(b)
				return err
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		for where, text := range public {
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("%s contains a secret", where)
				}
			}
		}
	})
}

// The node counts BFT refuses are refused before anything is written.
func TestRunBFTRefusesTwoValidators(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "net")
	_, err := Run(Config{Members: []string{"acme"}, Out: out, NodesPerMember: Roles{Validators: 2}})
	if err == nil || !strings.Contains(err.Error(), "exactly one validator") {
		t.Fatalf("err = %v, want ErrOneValidator", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused config still created %s", out)
	}
}

// memberFiles lists the files under dir, slash-separated and sorted, with
// keystore file names (which hold the address and a time) as KEY.
func memberFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if filepath.Base(filepath.Dir(p)) == keystoreDir {
			rel = filepath.ToSlash(filepath.Join(filepath.Dir(rel), "KEY"))
		}
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// loadFilePV loads a FilePV as a CometBFT node does, after checking the files
// parse: privval.LoadFilePV exits the process on a bad file.
func loadFilePV(t *testing.T, keyFile, stateFile string) *privval.FilePV {
	t.Helper()
	for _, f := range []struct {
		path string
		v    any
	}{{keyFile, &privval.FilePVKey{}}, {stateFile, &privval.FilePVLastSignState{}}} {
		b, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if err := cmtjson.Unmarshal(b, f.v); err != nil {
			t.Fatalf("%s: %v", f.path, err)
		}
	}
	return privval.LoadFilePV(keyFile, stateFile)
}

// bftNodeSecrets returns a BFT node's secrets in the forms they could leak:
// the JWT secret, and the CometBFT private keys as base64 (their JSON form).
func bftNodeSecrets(t *testing.T, res *Result, n Node) []string {
	t.Helper()
	if n.CometHome == "" {
		return nil
	}
	jwt, err := os.ReadFile(res.Path(n.JWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	home := cmtcfg.DefaultConfig().SetRoot(res.Path(n.CometHome))
	key, err := p2p.LoadNodeKey(home.NodeKeyFile())
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{string(jwt), string(jwt[2:]), base64.StdEncoding.EncodeToString(key.PrivKey.Bytes())}
	if n.Role == RoleValidator {
		pv := loadFilePV(t, home.PrivValidatorKeyFile(), home.PrivValidatorStateFile())
		secrets = append(secrets, base64.StdEncoding.EncodeToString(pv.Key.PrivKey.Bytes()))
	}
	return secrets
}

func TestManifestConsensus(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       Consensus
		err        bool
	}{
		{"made before bft", `{"chain_id": 7, "period": 2, "epoch": 30000, "members": []}`, ConsensusClique, false},
		{"clique", `{"consensus": "clique", "chain_id": 7}`, ConsensusClique, false},
		{"bft", `{"consensus": "bft", "chain_id": 7, "cometbft_chain_id": "consortium-7"}`, ConsensusBFT, false},
		{"unknown", `{"consensus": "raft", "chain_id": 7}`, "", true},
		{"not json", `{"consensus": `, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m Manifest
			err := json.Unmarshal([]byte(tc.json), &m)
			if (err != nil) != tc.err || m.Consensus != tc.want {
				t.Errorf("consensus %q, err %v; want %q, error %v", m.Consensus, err, tc.want, tc.err)
			}
			if err == nil && m.ChainID != 7 {
				t.Errorf("chain id %d, want 7", m.ChainID)
			}
		})
	}
}

// The manifest's BFT fields are written with the names tools read.
func TestManifestBFTFieldNames(t *testing.T) {
	h := common.Hash{1}
	m := Manifest{
		Consensus: ConsensusBFT, ChainID: 7, GenesisHash: &h, CometGenesis: CometGenesisFile, CometChainID: "consortium-7",
		Members: []Member{{
			Name:         "acme",
			Validator:    &Validator{Node: "validator-1", Address: []byte{0xab, 0xcd}, PubKey: []byte{1, 2, 3}, Power: 1},
			FeeRecipient: &Account{Address: common.Address{2}, Keystore: "k", Password: "p"},
			Nodes:        []Node{{Name: "tx-1", CometNodeID: "id", CometHome: "h", JWTSecret: "j"}},
		}},
		Prefund: []common.Address{{3}},
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"consensus":"bft"`, `"genesis_hash":"0x01`, `"cometbft_genesis":"cometbft-genesis.json"`,
		`"cometbft_chain_id":"consortium-7"`, `"validator":{"node":"validator-1","address":"ABCD","pub_key_ed25519":"AQID","power":1}`,
		`"fee_recipient":{"address":"0x0200000000000000000000000000000000000000","keystore_dir":"k","password_file":"p"}`,
		`"cometbft_node_id":"id","cometbft_home":"h","jwtsecret_file":"j"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("manifest JSON lacks %s:\n%s", want, b)
		}
	}
	for _, absent := range []string{`"period"`, `"epoch"`, `"signers"`, `"signer"`} {
		if strings.Contains(string(b), absent) {
			t.Errorf("BFT manifest JSON has Clique's %s:\n%s", absent, b)
		}
	}
	var back Manifest
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, m) {
		t.Errorf("round trip: %+v, %v", back, err)
	}
}
