package gethtest

import (
	"crypto/ecdsa"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consortium/consortium/internal/api"
)

// Config describes one geth node. The zero value is a v1.17.10 node on the
// default genesis with a fresh key, free loopback ports and no peers.
type Config struct {
	// Version is the geth release to run. Default: V117.
	Version string
	// Genesis is the genesis JSON given to `geth init`.
	// Default: DefaultGenesis(Version).
	Genesis []byte
	// NodeKey is the node's devp2p key. Default: a new random key.
	NodeKey *ecdsa.PrivateKey

	// StaticNodes, TrustedNodes and BootstrapNodes are enode URLs written
	// to config.toml under [Node.P2P]: the cold-start path, the only one
	// geth >= 1.11 reads (static-nodes.json is ignored). BootstrapNodes is
	// written as BootstrapNodesV5 too, or discv5 would fall back to the
	// mainnet bootnodes. Default: none.
	StaticNodes    []string
	TrustedNodes   []string
	BootstrapNodes []string

	// ListenAddr is the devp2p TCP address, also used for UDP discovery.
	// It must be on 127.0.0.1. Default: "127.0.0.1:<free port>".
	ListenAddr string
	// Bootnodes is given as --bootnodes, which overrides BootstrapNodes
	// from config.toml. When both are empty --bootnodes "" is passed so
	// geth never falls back to the mainnet bootnodes; when only
	// BootstrapNodes is set the flag is left out so config.toml is what
	// geth uses. Default: none.
	Bootnodes []string

	// DataDir is geth's data directory; `geth init` runs when it holds no
	// chain yet. Default: t.TempDir().
	DataDir string
	// KeepConfig leaves config.toml alone on a restart once it exists, so
	// what another program wrote there (the agent's cold-start config) is
	// what geth reads. Default false: rewritten from this Config each start.
	KeepConfig bool
	// ExtraArgs are appended to geth's command line (e.g. --mine).
	ExtraArgs []string
	// CrashSafe makes the data directory with `geth init --state.scheme
	// hash` and runs geth with --state.scheme hash --gcmode archive, as a
	// BFT chain's geth must run (internal/consensus/doc.go): each block's
	// state is on disk once imported, so a geth killed with SIGKILL comes
	// back at its height, not at the last state it happened to flush.
	// geth refuses to open a database with the other scheme, so keep it
	// the same across restarts of one data directory. Default false:
	// geth's defaults (path scheme, full gc).
	CrashSafe bool
	// StartTimeout bounds the wait for admin_nodeInfo to answer after the
	// process starts. Default: 90 s (a loaded 2-core machine under -race).
	StartTimeout time.Duration
}

func (c Config) withDefaults() (Config, error) {
	if c.Version == "" {
		c.Version = V117
	}
	if _, _, _, err := parseVersion(c.Version); err != nil {
		return c, err
	}
	if len(c.Genesis) == 0 {
		g, err := DefaultGenesis(c.Version)
		if err != nil {
			return c, err
		}
		c.Genesis = g
	}
	if c.StartTimeout <= 0 {
		c.StartTimeout = 90 * time.Second
	}
	if c.ListenAddr != "" {
		host, port, err := net.SplitHostPort(c.ListenAddr)
		if err != nil {
			return c, fmt.Errorf("gethtest: ListenAddr %q: %v", c.ListenAddr, err)
		}
		if host != "127.0.0.1" {
			return c, fmt.Errorf("gethtest: ListenAddr %q is not on 127.0.0.1", c.ListenAddr)
		}
		if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
			// Port 0 would give a new port on every restart.
			return c, fmt.Errorf("gethtest: ListenAddr %q needs a fixed port", c.ListenAddr)
		}
	}
	return c, nil
}

// configTOML renders the [Node.P2P] section geth reads with --config, by
// the writer the agent and the registrar use (api.GethConfig).
func configTOML(c Config) string {
	return "# written by internal/gethtest\n" + api.GethConfig{
		ListenAddr: c.ListenAddr,
		Static:     c.StaticNodes,
		Trusted:    c.TrustedNodes,
		Bootnodes:  c.BootstrapNodes,
	}.Render()
}

// ports is the node's fixed set of loopback ports, kept across restarts.
type ports struct {
	p2p, http, auth int
}

// gethArgs is the command line of a running node (without the binary).
func gethArgs(c Config, p ports, dataDir, configPath, keyPath, ipcPath string) []string {
	args := []string{
		"--datadir", dataDir,
		"--config", configPath,
		"--nodekey", keyPath,
		// Without extip geth asks the router for a mapping (UPnP/NAT-PMP)
		// and may advertise a non-loopback address.
		"--nat", "extip:127.0.0.1",
		"--ipcpath", ipcPath,
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(p.http),
		"--http.api", "admin,eth,net,web3,debug",
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", strconv.Itoa(p.auth),
		"--syncmode", "full",
		"--verbosity", "3",
	}
	if c.CrashSafe {
		args = append(args, crashSafeFlags...)
	}
	switch {
	case len(c.Bootnodes) > 0:
		args = append(args, "--bootnodes", strings.Join(c.Bootnodes, ","))
	case len(c.BootstrapNodes) > 0:
		// config.toml holds them; --bootnodes would replace them.
	default:
		// On a custom genesis geth otherwise dials the mainnet bootnodes.
		args = append(args, "--bootnodes", "")
	}
	return append(args, c.ExtraArgs...)
}

// crashSafeFlags are geth's flags for CrashSafe; `geth init` takes the
// first two (it has no --gcmode).
var crashSafeFlags = []string{"--state.scheme", "hash", "--gcmode", "archive"}

// initArgs is the command line of `geth init` (without the binary).
func initArgs(c Config, dataDir, genesis string) []string {
	args := []string{"init", "--datadir", dataDir}
	if c.CrashSafe {
		args = append(args, crashSafeFlags[:2]...)
	}
	return append(args, genesis)
}

var (
	portMu    sync.Mutex
	usedPorts = map[int]bool{}
)

// freePort returns a loopback port that was free for TCP (and for UDP when
// udp is set) a moment ago and has not been handed out before by this
// process. Another process may still take it before geth binds it; Start
// retries with new ports when geth reports the address in use.
func freePort(udp bool) (int, error) {
	portMu.Lock()
	defer portMu.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		ok := !usedPorts[port]
		if ok && udp {
			u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err != nil {
				ok = false
			} else {
				u.Close()
			}
		}
		l.Close()
		if ok {
			usedPorts[port] = true
			return port, nil
		}
	}
	return 0, fmt.Errorf("gethtest: no free loopback port found")
}
