package bootnode

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ecdsa"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
	"github.com/ethereum/go-ethereum/p2p/netutil"
)

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name        string
		in          Config
		wantListen  string
		wantKeyFile string
	}{
		{"zero", Config{}, ":30301", ""},
		{"datadir gives key file", Config{DataDir: "/d"}, ":30301", "/d/nodekey"},
		{"explicit key file wins", Config{DataDir: "/d", KeyFile: "/k"}, ":30301", "/k"},
		{"explicit listen", Config{ListenAddr: "127.0.0.1:1"}, "127.0.0.1:1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.in.withDefaults()
			if got.ListenAddr != tt.wantListen || got.KeyFile != tt.wantKeyFile || got.Logger == nil {
				t.Fatalf("got listen %q key %q logger %v, want %q %q non-nil",
					got.ListenAddr, got.KeyFile, got.Logger, tt.wantListen, tt.wantKeyFile)
			}
		})
	}
}

func TestParseNetRestrict(t *testing.T) {
	tests := []struct {
		in      string
		wantNil bool
		wantLen int
		err     error
	}{
		{in: "", wantNil: true},
		{in: "  ", wantNil: true},
		{in: "10.0.0.0/8", wantLen: 1},
		{in: "10.0.0.0/8, 192.168.0.0/16,\tfd00::/8", wantLen: 3},
		{in: ",", err: ErrBadNetRestrict},
		{in: "10.0.0.0/33", err: ErrBadNetRestrict},
		{in: "10.0.0.1", err: ErrBadNetRestrict},
		{in: "example.com/8", err: ErrBadNetRestrict},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseNetRestrict(tt.in)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			if (got == nil) != tt.wantNil || (got != nil && len(*got) != tt.wantLen) {
				t.Fatalf("got %v, want nil=%v len=%d", got, tt.wantNil, tt.wantLen)
			}
		})
	}
}

func TestAllowed(t *testing.T) {
	ten, _ := netutil.ParseNetlist("10.0.0.0/8")
	tests := []struct {
		name string
		list *netutil.Netlist
		ip   string
		want bool
	}{
		{"no list", nil, "127.0.0.1", true},
		{"inside", ten, "10.1.2.3", true},
		{"outside", ten, "127.0.0.1", false},
		{"inside, v4-mapped from dual-stack socket", ten, "::ffff:10.1.2.3", true},
		{"outside, v4-mapped", ten, "::ffff:127.0.0.1", false},
		{"v6 outside", ten, "::1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := allowed(tt.list, netip.MustParseAddr(tt.ip)); got != tt.want {
				t.Fatalf("allowed(%s) = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		cfg  Config
		err  error
	}{
		{"listen addr", Config{ListenAddr: "nonsense"}, ErrBadListenAddr},
		{"listen port", Config{ListenAddr: "127.0.0.1:70000"}, ErrBadListenAddr},
		{"netrestrict", Config{NetRestrict: "10.0.0.0/33"}, ErrBadNetRestrict},
		{"external ip unspecified", Config{ExternalIP: net.IPv4zero}, ErrBadExternalIP},
		{"external ip length", Config{ExternalIP: net.IP{1, 2, 3}}, ErrBadExternalIP},
		{"nil bootnode", Config{Bootnodes: []*enode.Node{nil}}, ErrBadBootnode},
		{"key file is a directory", Config{KeyFile: dir}, ErrKeyFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(tt.cfg)
			if !errors.Is(err, tt.err) {
				if b != nil {
					b.Close()
				}
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestKeyFile(t *testing.T) {
	valid := "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291"
	validID := func() enode.ID {
		k, _ := crypto.HexToECDSA(valid)
		return enode.PubkeyToIDV4(&k.PublicKey)
	}()
	tests := []struct {
		name     string
		path     string      // relative to a fresh temp dir
		existing string      // file content; "" means no file
		mode     os.FileMode // of the existing file; 0 means 0600
		wantID   enode.ID
		wantWarn bool
		err      error
	}{
		{name: "created", path: "nodekey"},
		{name: "created with parent dirs", path: "a/b/nodekey"},
		{name: "geth nodekey reused", path: "nodekey", existing: valid, wantID: validID},
		{name: "trailing newline accepted", path: "nodekey", existing: valid + "\n", wantID: validID},
		{name: "readable by others: used, warned, left alone", path: "nodekey", existing: valid, mode: 0o644, wantID: validID, wantWarn: true},
		{name: "too short", path: "nodekey", existing: "abcd", err: ErrKeyFile},
		{name: "not hex", path: "nodekey", existing: "zz" + valid[2:], err: ErrKeyFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), tt.path)
			wantMode := cmp.Or(tt.mode, 0o600)
			if tt.existing != "" {
				if err := os.WriteFile(path, []byte(tt.existing), wantMode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, wantMode); err != nil { // past the umask
					t.Fatal(err)
				}
			}
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, nil))
			b, err := New(Config{KeyFile: path, ListenAddr: "127.0.0.1:0", Logger: logger})
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			defer b.Close()
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if perm := info.Mode().Perm(); perm != wantMode {
				t.Errorf("key file mode = %#o, want %#o", perm, wantMode)
			}
			if warned := strings.Contains(logs.String(), "level=WARN"); warned != tt.wantWarn {
				t.Errorf("warned = %v, want %v; log:\n%s", warned, tt.wantWarn, logs.String())
			}
			if tt.wantID != (enode.ID{}) && b.ID() != tt.wantID {
				t.Errorf("ID = %v, want %v", b.ID(), tt.wantID)
			}
			// The file must load in geth's own format reader.
			k, err := crypto.LoadECDSA(path)
			if err != nil || enode.PubkeyToIDV4(&k.PublicKey) != b.ID() {
				t.Errorf("key file does not hold the node's key: %v", err)
			}
			if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".nodekey-*")); len(leftovers) > 0 {
				t.Errorf("temporary files left behind: %v", leftovers)
			}
		})
	}
}

// TestRestart checks what the registrar relies on: the same ID after a
// restart, and a record sequence number that only grows.
func TestRestart(t *testing.T) {
	tests := []struct {
		name    string
		dataDir bool // persistent node DB, else seq from the clock
	}{
		{"key file only", false},
		{"data dir", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := Config{ListenAddr: "127.0.0.1:0", KeyFile: filepath.Join(dir, "nodekey")}
			if tt.dataDir {
				cfg = Config{ListenAddr: "127.0.0.1:0", DataDir: dir}
			}
			var ids []enode.ID
			var seqs []uint64
			for range 3 {
				b := startBootnode(t, cfg)
				ids = append(ids, b.ID())
				seqs = append(seqs, b.Record().Seq())
				b.Close()
			}
			for i := 1; i < len(ids); i++ {
				if ids[i] != ids[0] {
					t.Fatalf("restart %d changed the ID: %v -> %v", i, ids[0], ids[i])
				}
				if seqs[i] <= seqs[i-1] {
					t.Fatalf("restart %d did not grow the seq: %v", i, seqs)
				}
			}
		})
	}
}

func TestIdentityStrings(t *testing.T) {
	b := startBootnode(t, Config{})
	port := b.conn.LocalAddr().(*net.UDPAddr).Port

	u, err := enode.ParseV4(b.Enode())
	if err != nil {
		t.Fatalf("Enode() %q does not parse: %v", b.Enode(), err)
	}
	if u.ID() != b.ID() || u.UDP() != port || u.TCP() != port || !u.IP().Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("Enode() = %q, want id %v at 127.0.0.1:%d", b.Enode(), b.ID(), port)
	}

	r, err := enode.Parse(enode.ValidSchemes, b.ENR())
	if err != nil {
		t.Fatalf("ENR() does not parse: %v", err)
	}
	if r.ID() != b.ID() || r.UDP() != port || r.TCP() != 0 || r.Seq() != b.Record().Seq() {
		t.Errorf("ENR() = %v, want id %v udp %d no tcp seq %d", r, b.ID(), port, b.Record().Seq())
	}
	// Record is signed: anyone can recover the ID from it.
	n, err := enode.New(enode.ValidSchemes, b.Record())
	if err != nil || n.ID() != b.ID() {
		t.Errorf("Record() does not verify to our ID: %v", err)
	}
}

func TestExternalIP(t *testing.T) {
	b := startBootnode(t, Config{ExternalIP: net.ParseIP("192.0.2.7")})
	if ip := b.Self().IP(); !ip.Equal(net.ParseIP("192.0.2.7")) {
		t.Fatalf("advertised IP = %v, want 192.0.2.7", ip)
	}
}

func TestDiscoverConfigBootnodes(t *testing.T) {
	other := enode.NewV4(&mustKey(t).PublicKey, net.IPv4(10, 0, 0, 1), 30301, 30301)
	tests := []struct {
		name      string
		bootnodes []*enode.Node
	}{
		{"none: never the public networks'", nil},
		{"only the operator's", []*enode.Node{other}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(Config{ListenAddr: "127.0.0.1:0", Bootnodes: tt.bootnodes, NetRestrict: "10.0.0.0/8"})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			cfg := b.discoverConfig(nil)
			if len(cfg.Bootnodes) != len(tt.bootnodes) || (len(tt.bootnodes) > 0 && cfg.Bootnodes[0] != other) {
				t.Errorf("discover bootnodes = %v, want %v", cfg.Bootnodes, tt.bootnodes)
			}
			if cfg.NetRestrict == nil || !cfg.NetRestrict.Contains(net.IPv4(10, 9, 9, 9)) {
				t.Errorf("netrestrict not passed to discover: %v", cfg.NetRestrict)
			}
		})
	}
}

func TestLifecycle(t *testing.T) {
	b := startBootnode(t, Config{})
	if err := b.Start(t.Context()); !errors.Is(err, ErrStarted) {
		t.Errorf("second Start: %v, want ErrStarted", err)
	}
	taken := b.conn.LocalAddr().String()
	other, err := New(Config{ListenAddr: taken})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Start(t.Context()); !errors.Is(err, ErrListen) {
		t.Errorf("Start on a taken port: %v, want ErrListen", err)
	}
	other.Close()
	if len(tableNodes(b, 4))+len(tableNodes(b, 5)) != 0 {
		t.Errorf("a bootnode with no bootnodes has a non-empty table")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.Start(t.Context()); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close: %v, want ErrClosed", err)
	}
}

func TestContextCancelCloses(t *testing.T) {
	b, err := New(Config{ListenAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	addr := b.conn.LocalAddr().String()
	cancel()
	// The port is free again once the bootnode has closed.
	// Real sockets leave nothing to wait on but polling.
	testutil.Eventually(t, waitLimit, "socket released after cancel", func() error {
		c, err := net.ListenPacket("udp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
