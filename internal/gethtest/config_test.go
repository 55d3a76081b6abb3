package gethtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

func TestEnvVarAndCachePath(t *testing.T) {
	t.Setenv(CacheEnv, "/cache")
	tests := []struct {
		version, env, path string
	}{
		{V117, "GETH_117", "/cache/geth-v1.17.10/geth"},
		{V113, "GETH_113", "/cache/geth-v1.13.15/geth"},
		{"1.17.10", "GETH_117", "/cache/geth-v1.17.10/geth"},
		{"latest", "", "/cache/geth-vlatest/geth"},
	}
	for _, tt := range tests {
		if got := EnvVar(tt.version); got != tt.env {
			t.Errorf("EnvVar(%q) = %q, want %q", tt.version, got, tt.env)
		}
		if got := CachePath(tt.version); got != tt.path {
			t.Errorf("CachePath(%q) = %q, want %q", tt.version, got, tt.path)
		}
	}
}

func TestCachePathDefaultsToHome(t *testing.T) {
	t.Setenv(CacheEnv, "")
	t.Setenv("HOME", "/home/x")
	if got, want := CachePath(V117), "/home/x/.cache/consortium/geth-v1.17.10/geth"; got != want {
		t.Errorf("CachePath = %q, want %q", got, want)
	}
}

func TestDefaultGenesis(t *testing.T) {
	tests := []struct {
		version, want string
	}{
		{V117, `"terminalTotalDifficulty": 0`},
		{"v1.14.0", `"terminalTotalDifficulty": 0`},
		{V113, `"clique"`},
	}
	for _, tt := range tests {
		g, err := DefaultGenesis(tt.version)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(g), tt.want) {
			t.Errorf("DefaultGenesis(%s) lacks %s", tt.version, tt.want)
		}
	}
	g, _ := DefaultGenesis(V117)
	g[0] = 'X'
	if again, _ := DefaultGenesis(V117); again[0] == 'X' {
		t.Error("DefaultGenesis returned the embedded slice itself")
	}
	if _, err := DefaultGenesis("v2.0.0"); err == nil {
		t.Error("DefaultGenesis(v2.0.0) did not fail")
	}
}

func TestConfigDefaults(t *testing.T) {
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.Version != V117 || len(c.Genesis) == 0 || c.StartTimeout == 0 {
		t.Errorf("zero Config filled in as %+v", c)
	}
	for _, addr := range []string{"0.0.0.0:30303", "localhost:30303", "127.0.0.1:0", "127.0.0.1", "[::1]:30303"} {
		if _, err := (Config{ListenAddr: addr}).withDefaults(); err == nil {
			t.Errorf("ListenAddr %q accepted", addr)
		}
	}
	if _, err := (Config{Version: "nightly"}).withDefaults(); err == nil {
		t.Error("Version nightly accepted")
	}
}

func TestConfigTOML(t *testing.T) {
	got := configTOML(Config{
		ListenAddr:     "127.0.0.1:30303",
		StaticNodes:    []string{"enode://a@127.0.0.1:1", "enode://b@127.0.0.1:2"},
		BootstrapNodes: []string{"enode://c@127.0.0.1:3"},
	})
	want := `# written by internal/gethtest
[Node.P2P]
StaticNodes = ["enode://a@127.0.0.1:1", "enode://b@127.0.0.1:2"]
TrustedNodes = []
BootstrapNodes = ["enode://c@127.0.0.1:3"]
BootstrapNodesV5 = ["enode://c@127.0.0.1:3"]
ListenAddr = "127.0.0.1:30303"
`
	if got != want {
		t.Errorf("configTOML:\n%s\nwant:\n%s", got, want)
	}
}

// bootnodesFlag returns the value of --bootnodes and whether it is given.
func bootnodesFlag(args []string) (string, bool) {
	i := slices.Index(args, "--bootnodes")
	if i < 0 {
		return "", false
	}
	return args[i+1], true
}

func TestArgsBootnodes(t *testing.T) {
	const a, b = "enode://a@127.0.0.1:1", "enode://b@127.0.0.1:2"
	tests := []struct {
		name    string
		cfg     Config
		want    string
		present bool
	}{
		{"none: empty flag so mainnet is never dialled", Config{}, "", true},
		{"flag", Config{Bootnodes: []string{a, b}}, a + "," + b, true},
		{"flag wins over config", Config{Bootnodes: []string{a}, BootstrapNodes: []string{b}}, a, true},
		{"config only: no flag, it would erase them", Config{BootstrapNodes: []string{b}}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := gethArgs(tt.cfg, ports{1, 2, 3}, "/d", "/d/c.toml", "/d/k", "/tmp/x/geth.ipc")
			got, present := bootnodesFlag(args)
			if got != tt.want || present != tt.present {
				t.Errorf("--bootnodes = %q (given: %v), want %q (given: %v)", got, present, tt.want, tt.present)
			}
			for _, must := range []string{"--nat extip:127.0.0.1", "--http.addr 127.0.0.1", "--authrpc.addr 127.0.0.1", "--ipcpath /tmp/x/geth.ipc", "--syncmode full"} {
				if !strings.Contains(strings.Join(args, " "), must) {
					t.Errorf("args lack %q: %v", must, args)
				}
			}
			if slices.Contains(args, "--port") {
				t.Errorf("--port binds every interface; args: %v", args)
			}
		})
	}
}

func TestCrashSafeArgs(t *testing.T) {
	run := strings.Join(gethArgs(Config{CrashSafe: true}, ports{1, 2, 3}, "/d", "/d/c.toml", "/d/k", "/tmp/x/geth.ipc"), " ")
	if !strings.Contains(run, "--state.scheme hash --gcmode archive") {
		t.Errorf("CrashSafe run args lack the state flags: %s", run)
	}
	if got, want := strings.Join(initArgs(Config{CrashSafe: true}, "/d", "/d/g.json"), " "), "init --datadir /d --state.scheme hash /d/g.json"; got != want {
		t.Errorf("CrashSafe init args %q, want %q", got, want)
	}
	plain := strings.Join(gethArgs(Config{}, ports{1, 2, 3}, "/d", "/d/c.toml", "/d/k", "/tmp/x/geth.ipc"), " ")
	if strings.Contains(plain, "--state.scheme") || strings.Contains(plain, "--gcmode") {
		t.Errorf("default args set the state scheme: %s", plain)
	}
	if got, want := strings.Join(initArgs(Config{}, "/d", "/d/g.json"), " "), "init --datadir /d /d/g.json"; got != want {
		t.Errorf("default init args %q, want %q", got, want)
	}
}

// TestEffectiveBootnodes asks real geth (dumpconfig) which bootnodes it
// would use: never the mainnet ones, and the configured ones for both
// discovery versions.
func TestEffectiveBootnodes(t *testing.T) {
	const boot = "enode://a979fb575495b8d6db44f750317d0f4622bf4c2aa3365d6af7c284339968eef29b69ad0dce72a4d8db5ebb4968de0e3bec910127f134779fbcb0cb6d3331163c@127.0.0.1:30304"
	for _, version := range []string{V117, V113} {
		for _, tt := range []struct {
			name string
			cfg  Config
			want string // every Bootstrap line must be this list
		}{
			{"none", Config{}, `[]`},
			{"config", Config{BootstrapNodes: []string{boot}}, `["` + boot + `"]`},
			{"flag", Config{Bootnodes: []string{boot}}, `["` + boot + `"]`},
		} {
			t.Run(version+"/"+tt.name, func(t *testing.T) {
				bin := Binary(t, version)
				dir := t.TempDir()
				tt.cfg.ListenAddr = "127.0.0.1:30399"
				cfgPath := filepath.Join(dir, "config.toml")
				if err := os.WriteFile(cfgPath, []byte(configTOML(tt.cfg)), 0o644); err != nil {
					t.Fatal(err)
				}
				keyPath := filepath.Join(dir, "key")
				key, _ := crypto.GenerateKey()
				if err := crypto.SaveECDSA(keyPath, key); err != nil {
					t.Fatal(err)
				}
				args := gethArgs(tt.cfg, ports{30399, 30400, 30401}, dir, cfgPath, keyPath, filepath.Join(dir, "geth.ipc"))
				out, err := exec.Command(bin, append(args, "dumpconfig")...).CombinedOutput()
				if err != nil {
					t.Fatalf("dumpconfig: %v\n%s", err, out)
				}
				var seen int
				for _, line := range strings.Split(string(out), "\n") {
					k, v, ok := strings.Cut(line, " = ")
					if !ok || !strings.HasPrefix(k, "BootstrapNodes") {
						continue
					}
					seen++
					if v != tt.want {
						t.Errorf("%s = %.200s, want %s", k, v, tt.want)
					}
				}
				// An empty list may be left out of the dump.
				if seen != 2 && !(seen == 1 && tt.want == "[]") {
					t.Errorf("dumpconfig printed %d BootstrapNodes lines, want 2:\n%s", seen, out)
				}
			})
		}
	}
}

// fakeTB records Skip and Fatal instead of acting on them, so Binary's
// decisions can be tested; it must be used from its own goroutine.
type fakeTB struct {
	testing.TB
	skipped, fatal string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = format
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = format
	runtime.Goexit()
}
func (f *fakeTB) Fatal(args ...any) {
	f.fatal = "fatal"
	runtime.Goexit()
}

func runFake(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	f := &fakeTB{TB: t}
	var wg sync.WaitGroup
	wg.Go(func() { fn(f) })
	wg.Wait()
	return f
}

func TestBinaryMissing(t *testing.T) {
	t.Setenv(CacheEnv, t.TempDir())
	t.Setenv("GETH_117", "")

	t.Setenv(RequireEnv, "")
	if f := runFake(t, func(tb testing.TB) { Binary(tb, V117) }); f.skipped == "" || f.fatal != "" {
		t.Errorf("without %s: skipped=%q fatal=%q, want a skip", RequireEnv, f.skipped, f.fatal)
	}
	t.Setenv(RequireEnv, "1")
	if f := runFake(t, func(tb testing.TB) { Binary(tb, V117) }); f.fatal == "" {
		t.Errorf("with %s: skipped=%q fatal=%q, want a failure", RequireEnv, f.skipped, f.fatal)
	}
}

func TestBinaryEnvOverride(t *testing.T) {
	real113 := Binary(t, V113)
	t.Setenv(CacheEnv, t.TempDir())

	t.Setenv("GETH_113", real113)
	if got := Binary(t, V113); got != real113 {
		t.Errorf("Binary = %q, want GETH_113 %q", got, real113)
	}
	// A binary of the wrong line is a failure, not a silent pass.
	t.Setenv("GETH_117", real113)
	if f := runFake(t, func(tb testing.TB) { Binary(tb, V117) }); f.fatal == "" {
		t.Error("GETH_117 pointing at geth 1.13 was accepted")
	}
}
