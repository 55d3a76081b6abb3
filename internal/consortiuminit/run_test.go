package consortiuminit

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/dnstree"
	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/dnsdisc"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// publicFiles are the only files Run may write with a mode other than 0600,
// besides each CometBFT home's copy of the CometBFT genesis (isPublic).
var publicFiles = []string{GenesisFile, CometGenesisFile, ManifestFile, SeedFile}

// isPublic reports whether rel, a slash path under Out, may be world-readable.
func isPublic(rel string) bool {
	return slices.Contains(publicFiles, rel) || strings.HasSuffix(rel, "/"+cometHomeDir+"/"+CometGenesisCopy) ||
		strings.HasPrefix(rel, MembersDir+"/") && strings.HasSuffix(rel, "/"+dnsFlagFile)
}

// checkModes walks out and checks every mode: 0700 directories, 0600 files
// but the public ones, 0644; and that no staging directory is left.
func checkModes(t *testing.T, out string) {
	t.Helper()
	err := filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		want := fs.FileMode(0o600)
		switch {
		case d.IsDir():
			want = fs.ModeDir | 0o700
		case isPublic(filepath.ToSlash(rel)):
			want = 0o644
		}
		if fi.Mode() != want {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), want)
		}
		if strings.HasPrefix(d.Name(), ".consortium-init-") {
			t.Errorf("staging directory left behind: %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "net")
	var logs bytes.Buffer
	res, err := Run(Config{
		Consensus: ConsensusClique,
		Members:   []string{"acme", "globex"},
		Out:       out,
		ChainID:   4242,
		Prefund:   []common.Address{high},
		Logger:    slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("result", func(t *testing.T) {
		if res.Out != out || res.Consensus != ConsensusClique || res.ChainID != 4242 || res.Period != DefaultPeriod || res.Epoch != Epoch ||
			res.CometGenesis != "" || res.GenesisHash != nil {
			t.Errorf("result header: %+v", res)
		}
		if len(res.Members) != 2 || res.Members[0].Name != "acme" || res.Members[1].Name != "globex" {
			t.Fatalf("members: %+v", res.Members)
		}
		var roles []Role
		for _, n := range res.Members[0].Nodes {
			roles = append(roles, n.Role)
		}
		if want := []Role{RoleBootnode, RoleValidator, RoleTx, RolePublic}; !slices.Equal(roles, want) {
			t.Errorf("roles %v, want %v", roles, want)
		}
		if len(res.Signers) != 2 || !slices.IsSortedFunc(res.Signers, func(a, b common.Address) int { return bytes.Compare(a[:], b[:]) }) {
			t.Errorf("signers not two and sorted: %v", res.Signers)
		}
	})

	t.Run("modes", func(t *testing.T) { checkModes(t, out) })

	var seed seedFile
	readJSON(t, res.Path(res.Seed), &seed)

	t.Run("credentials", func(t *testing.T) {
		admin := readCredential(t, res.Path(AdminCredentialFile))
		if shown, err := res.AdminCredential(); err != nil || shown != admin.String() {
			t.Errorf("AdminCredential() = %q, %v; want the file's credential", shown, err)
		}
		if admin.Principal != auth.Admin || !auth.Verify(seed.AdminHash, admin.Secret) {
			t.Errorf("admin credential %q does not match seed hash", admin.Principal)
		}
		if len(seed.Members) != len(res.Members) {
			t.Fatalf("seed has %d members, want %d", len(seed.Members), len(res.Members))
		}
		for i, m := range res.Members {
			c := readCredential(t, res.Path(m.Credential))
			if c.Principal != m.Name || seed.Members[i].Name != m.Name || !auth.Verify(seed.Members[i].Hash, c.Secret) {
				t.Errorf("member %s: credential for %q does not match seed entry %+v", m.Name, c.Principal, seed.Members[i])
			}
		}
	})

	var genesis genesisFile
	readJSON(t, res.Path(res.Genesis), &genesis)

	t.Run("nodes", func(t *testing.T) {
		extraSigners, err := ParseExtraData(genesis.ExtraData)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(extraSigners, res.Signers) {
			t.Errorf("extraData signers %v, result signers %v", extraSigners, res.Signers)
		}
		ids := map[string]bool{}
		for _, m := range res.Members {
			for _, n := range m.Nodes {
				key, err := crypto.LoadECDSA(res.Path(n.Nodekey)) // what geth --nodekey calls
				if err != nil {
					t.Fatalf("%s/%s nodekey: %v", m.Name, n.Name, err)
				}
				if id := enode.PubkeyToIDV4(&key.PublicKey).String(); id != n.ID || len(n.ID) != 64 {
					t.Errorf("%s/%s: nodekey gives id %s, manifest says %s", m.Name, n.Name, id, n.ID)
				}
				if pub, err := enode.ParseV4("enode://" + n.Pubkey + "@127.0.0.1:30303"); err != nil || pub.ID().String() != n.ID {
					t.Errorf("%s/%s: enode pubkey %s does not give id %s (%v)", m.Name, n.Name, n.Pubkey, n.ID, err)
				}
				if ids[n.ID] {
					t.Errorf("node id %s twice", n.ID)
				}
				ids[n.ID] = true

				if (n.Role == RoleValidator) != (n.Signer != nil) {
					t.Fatalf("%s/%s: role %s with signer %v", m.Name, n.Name, n.Role, n.Signer)
				}
				if n.CometHome != "" || n.CometNodeID != "" || n.JWTSecret != "" {
					t.Errorf("%s/%s: BFT fields in a Clique node: %+v", m.Name, n.Name, n)
				}
				if n.Signer == nil {
					continue
				}
				addr := unlock(t, res.Path(n.Keystore), res.Path(n.Password))
				if addr != *n.Signer {
					t.Errorf("%s/%s: keystore holds %s, manifest says %s", m.Name, n.Name, addr.Hex(), n.Signer.Hex())
				}
				if !slices.Contains(extraSigners, addr) {
					t.Errorf("%s/%s: signer %s not in extraData", m.Name, n.Name, addr.Hex())
				}
				if _, ok := genesis.Alloc[strings.ToLower(addr.Hex()[2:])]; !ok {
					t.Errorf("signer %s not funded", addr.Hex())
				}
			}
		}
		if _, ok := genesis.Alloc[strings.ToLower(high.Hex()[2:])]; !ok {
			t.Errorf("prefund %s not funded", high.Hex())
		}
		if genesis.Config.ChainID != 4242 || genesis.Config.Clique.Period != DefaultPeriod {
			t.Errorf("genesis config %+v", genesis.Config)
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
		for _, f := range publicFiles {
			b, err := os.ReadFile(res.Path(f))
			if f == CometGenesisFile && errors.Is(err, fs.ErrNotExist) {
				continue // BFT's
			}
			if err != nil {
				t.Fatal(err)
			}
			public[f] = string(b)
		}
		for where, text := range public {
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("%s contains a secret", where)
				}
			}
		}
		if !strings.Contains(logs.String(), "credential") {
			t.Errorf("log does not mention the files written:\n%s", logs.String())
		}
	})
}

func TestRunRefusesNonEmptyOut(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	keep := filepath.Join(out, "keep.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Run(Config{Members: []string{"acme"}, Out: out, NodesPerMember: Roles{Validators: 1}})
	if !errors.Is(err, ErrExists) {
		t.Fatalf("Run into non-empty dir: %v, want ErrExists", err)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 1 {
		t.Errorf("refused Run still wrote: %v", entries)
	}

	// Force replaces what init wrote, including members no longer listed
	// and the staging directory of a run that was killed, and leaves
	// everything else alone.
	if err := os.Mkdir(filepath.Join(out, stagingPrefix+"killed"), 0o700); err != nil {
		t.Fatal(err)
	}
	// The first run is BFT: the Clique run over it must leave no CometBFT
	// genesis behind.
	first, err := Run(Config{Members: []string{"acme", "globex"}, Out: out, NodesPerMember: Roles{Validators: 1}, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(first.Path(CometGenesisFile)); err != nil {
		t.Fatalf("BFT run wrote no CometBFT genesis: %v", err)
	}
	second, err := Run(Config{Consensus: ConsensusClique, Members: []string{"initech"}, Out: out, NodesPerMember: Roles{Validators: 1}, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
		t.Errorf("Force touched an unrelated file: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(out, MembersDir, "acme")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("member of the first run survived the second: %v", err)
	}
	var genesis genesisFile
	readJSON(t, second.Path(GenesisFile), &genesis)
	if signers, _ := ParseExtraData(genesis.ExtraData); !slices.Equal(signers, second.Signers) || len(signers) != 1 {
		t.Errorf("genesis signers %v, want the second run's %v", signers, second.Signers)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{ManifestFile, GenesisFile, "keep.txt", MembersDir, RegistrarDir}; !slices.Equal(names, want) {
		t.Errorf("out holds %v, want %v", names, want)
	}
}

func TestRunIntoEmptyDir(t *testing.T) {
	t.Parallel()
	out := t.TempDir()
	if _, err := Run(Config{Members: []string{"acme"}, Out: out, NodesPerMember: Roles{Validators: 1}}); err != nil {
		t.Fatalf("Run into an existing empty dir: %v", err)
	}
}

func TestRunUnwritable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	locked := filepath.Join(dir, "locked")
	if err := os.Mkdir(locked, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o700) })

	for _, tc := range []struct {
		name, out string
		asRoot    bool // whether the case holds for root, who ignores modes
	}{
		{"out is a file", file, true},
		{"parent is a file", filepath.Join(file, "net"), true},
		{"read-only parent", filepath.Join(locked, "net"), false},
		{"read-only out", locked, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.asRoot && os.Geteuid() == 0 {
				t.Skip("root writes through file modes")
			}
			_, err := Run(Config{Members: []string{"acme"}, Out: tc.out, NodesPerMember: Roles{Validators: 1}, Force: true})
			if !errors.Is(err, ErrUnwritable) {
				t.Errorf("Run(%s) = %v, want ErrUnwritable", tc.out, err)
			}
		})
	}
}

func TestRunValidatesBeforeWriting(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "net")
	if _, err := Run(Config{Members: []string{"acme", "acme"}, Out: out}); !errors.Is(err, ErrDuplicateMember) {
		t.Fatalf("err = %v, want ErrDuplicateMember", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a refused config still created %s", out)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func readCredential(t *testing.T, path string) auth.Credential {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	c, err := auth.Parse(string(b))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// unlock decrypts the single key in a keystore directory with the password
// file, as geth --unlock --password does, and returns its address.
func unlock(t *testing.T, dir, passwordFile string) common.Address {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("keystore %s: %v entries, %v", dir, len(entries), err)
	}
	keyJSON, err := os.ReadFile(filepath.Join(dir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	pw, err := os.ReadFile(passwordFile)
	if err != nil {
		t.Fatal(err)
	}
	key, err := keystore.DecryptKey(keyJSON, string(pw))
	if err != nil {
		t.Fatalf("keystore %s does not unlock with %s: %v", dir, passwordFile, err)
	}
	return key.Address
}

// collectSecrets returns every secret Run wrote, in the forms it could leak.
func collectSecrets(t *testing.T, res *Result) []string {
	t.Helper()
	read := func(rel string) string {
		b, err := os.ReadFile(res.Path(rel))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	secrets := []string{readCredential(t, res.Path(AdminCredentialFile)).Secret}
	for _, m := range res.Members {
		secrets = append(secrets, readCredential(t, res.Path(m.Credential)).Secret)
		for _, n := range m.Nodes {
			secrets = append(secrets, read(n.Nodekey))
			if n.Password != "" {
				secrets = append(secrets, accountSecrets(t, res, n.Keystore, n.Password)...)
			}
			secrets = append(secrets, bftNodeSecrets(t, res, n)...)
		}
		if a := m.FeeRecipient; a != nil {
			secrets = append(secrets, accountSecrets(t, res, a.Keystore, a.Password)...)
		}
	}
	return secrets
}

// accountSecrets returns an account's password and private key (hex).
func accountSecrets(t *testing.T, res *Result, keystoreDir, passwordFile string) []string {
	t.Helper()
	pw, err := os.ReadFile(res.Path(passwordFile))
	if err != nil {
		t.Fatal(err)
	}
	key, err := keystore.DecryptKey(mustReadKeystore(t, res.Path(keystoreDir)), string(pw))
	if err != nil {
		t.Fatal(err)
	}
	return []string{string(pw), hexutil.Encode(crypto.FromECDSA(key.PrivateKey))[2:]}
}

func mustReadKeystore(t *testing.T, dir string) []byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("keystore %s: %v", dir, err)
	}
	b, err := os.ReadFile(filepath.Join(dir, entries[0].Name()))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Every member gets the --discovery.dns flag of its node tree: in the
// summary init prints, in the manifest and in a file of its directory; the
// URL names the member's zone under the DNS domain and the public half of
// registrar/dnstree.key, the key the registrar signs the trees with.
func TestRunDiscoveryDNS(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "net")
	res, err := Run(Config{Consensus: ConsensusClique, Members: []string{"acme", "globex"}, Out: out, DNSDomain: "Corp.Example."})
	if err != nil {
		t.Fatal(err)
	}
	key, err := dnstree.LoadKey(res.Path(res.DNSKey))
	if err != nil {
		t.Fatalf("the tree key init wrote: %v", err)
	}
	if res.DNSDomain != "corp.example" || res.DNSKey != DNSKeyFile {
		t.Errorf("manifest dns_domain %q, dns_key_file %q", res.DNSDomain, res.DNSKey)
	}
	summary := res.String()
	for _, m := range res.Members {
		domain, pub, err := dnsdisc.ParseURL(m.DiscoveryDNS)
		if err != nil {
			t.Fatalf("member %s: %q: %v", m.Name, m.DiscoveryDNS, err)
		}
		if domain != m.Name+".nodes.corp.example" || !pub.Equal(&key.PublicKey) {
			t.Errorf("member %s: URL %s names %s and another key", m.Name, m.DiscoveryDNS, domain)
		}
		flag := "--discovery.dns " + m.DiscoveryDNS
		if !strings.Contains(summary, flag) {
			t.Errorf("the summary does not give member %s's %q:\n%s", m.Name, flag, summary)
		}
		b, err := os.ReadFile(res.Path(m.DiscoveryDNSFlag))
		if err != nil || string(b) != flag+"\n" {
			t.Errorf("member %s's flag file %s: %q %v", m.Name, m.DiscoveryDNSFlag, b, err)
		}
	}
	if !strings.Contains(summary, res.Path(DNSKeyFile)) || !strings.Contains(summary, "--dns-domain corp.example") {
		t.Errorf("the summary does not tell the registrar's DNS flags:\n%s", summary)
	}
	var m Manifest
	b, _ := os.ReadFile(res.Path(ManifestFile))
	if err := json.Unmarshal(b, &m); err != nil || m.Members[0].DiscoveryDNS != res.Members[0].DiscoveryDNS {
		t.Errorf("consortium.json's discovery_dns: %v %+v", err, m.Members)
	}

	if _, err := Run(Config{Members: []string{"acme"}, Out: filepath.Join(t.TempDir(), "x"), DNSDomain: "bad_domain"}); !errors.Is(err, dnstree.ErrConfig) {
		t.Errorf("DNSDomain bad_domain: %v, want a refusal", err)
	}
}
