package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v3"
)

func TestConsensusFlags(t *testing.T) {
	dir := t.TempDir()
	jwt := filepath.Join(dir, "jwt.hex")
	if err := os.WriteFile(jwt, []byte("0x"+strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		args      []string
		advertise net.IP
		off       bool
		err       string
		port      int
		listen    string
		external  string
	}{
		{"off by default", nil, nil, true, "", 0, "", ""},
		{"in-process consensus", []string{"--consensus-home", dir, "--jwt-secret", jwt, "--consensus-p2p", "127.0.0.1:26656", "--fee-recipient", "0x00000000000000000000000000000000000000aa"},
			nil, false, "", 26656, "tcp://127.0.0.1:26656", ""},
		{"advertised address", []string{"--consensus-home", dir, "--jwt-secret", jwt}, net.ParseIP("10.0.0.5"), false, "", 26656, "tcp://0.0.0.0:26656", "10.0.0.5:26656"},
		{"no JWT secret", []string{"--consensus-home", dir}, nil, false, "needs --jwt-secret", 0, "", ""},
		{"bad listen address", []string{"--consensus-home", dir, "--jwt-secret", jwt, "--consensus-p2p", "26656"}, nil, false, "not host:port", 0, "", ""},
		{"bad fee recipient", []string{"--consensus-home", dir, "--jwt-secret", jwt, "--fee-recipient", "alice"}, nil, false, "not an address", 0, "", ""},
		{"RPC off the loopback", []string{"--consensus-home", dir, "--jwt-secret", jwt, "--consensus-rpc", "0.0.0.0:26657"}, nil, false, "must be a loopback", 0, "", ""},
		{"RPC not host:port", []string{"--consensus-home", dir, "--jwt-secret", jwt, "--consensus-rpc", "26657"}, nil, false, "must be a loopback", 0, "", ""},
		{"missing JWT file", []string{"--consensus-home", dir, "--jwt-secret", filepath.Join(dir, "none")}, nil, false, "JWT secret", 0, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := parseFlags(t, consensusFlagList(&env{getenv: func(string) string { return "" }}), tc.args)
			o, err := readConsensusFlags(cmd).check(tc.advertise)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (o == nil) != tc.off {
				t.Fatalf("opts %+v, want off=%v", o, tc.off)
			}
			if o == nil {
				return
			}
			if tc.name == "in-process consensus" && o.cfg.RPCListen != "" {
				t.Errorf("CometBFT RPC on %q without --consensus-rpc", o.cfg.RPCListen)
			}
			if o.port != tc.port || o.cfg.P2PListen != tc.listen || o.cfg.ExternalAddress != tc.external || len(o.cfg.JWTSecret) != 32 {
				t.Fatalf("port %d listen %q external %q secret %d bytes", o.port, o.cfg.P2PListen, o.cfg.ExternalAddress, len(o.cfg.JWTSecret))
			}
		})
	}
}

// TestGethFlagLines: an empty --bootnodes stays one word with its flag, so
// `geth $(cat geth.flags)` does not hand the next flag to it as its value.
func TestGethFlagLines(t *testing.T) {
	lines, quoted := gethFlagLines([]string{"--config", "config.toml", "--bootnodes", "", "--nat", "extip:10.0.0.5", "--nodekey", "my key"})
	if want := "--config=config.toml --bootnodes= --nat=extip:10.0.0.5 --nodekey=my key"; strings.Join(lines, " ") != want {
		t.Errorf("lines %q, want %q", lines, want)
	}
	if want := "--config=config.toml --bootnodes= --nat=extip:10.0.0.5 '--nodekey=my key'"; strings.Join(quoted, " ") != want {
		t.Errorf("quoted %q, want %q", quoted, want)
	}
}

// parseFlags parses args with flags, as a command of the tree does, and
// returns the command to read them from.
func parseFlags(t *testing.T, flags []cli.Flag, args []string) *cli.Command {
	t.Helper()
	var parsed *cli.Command
	cmd := &cli.Command{Name: "t", Flags: flags, Action: func(_ context.Context, c *cli.Command) error { parsed = c; return nil }}
	if err := cmd.Run(context.Background(), append([]string{"t"}, args...)); err != nil || parsed == nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return parsed
}
