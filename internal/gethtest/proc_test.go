package gethtest

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// listeners returns the local addresses of the TCP sockets in LISTEN state
// and of all UDP sockets that process pid holds, read from /proc.
func listeners(t *testing.T, pid int) []string {
	t.Helper()
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot read the process's sockets: %v", err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if inode, ok := strings.CutPrefix(link, "socket:["); ok && err == nil {
			inodes[strings.TrimSuffix(inode, "]")] = true
		}
	}
	var out []string
	for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !inodes[fields[9]] {
				continue
			}
			const tcpListen = "0A"
			if strings.HasPrefix(table, "tcp") && fields[3] != tcpListen {
				continue
			}
			out = append(out, table+" "+decodeAddr(t, fields[1]))
		}
		f.Close()
	}
	return out
}

// decodeAddr turns /proc/net's "0100007F:1F90" into "127.0.0.1:8080".
func decodeAddr(t *testing.T, s string) string {
	hexIP, hexPort, _ := strings.Cut(s, ":")
	raw, err := hex.DecodeString(hexIP)
	if err != nil {
		t.Fatalf("bad address %q", s)
	}
	// The kernel prints each 32-bit word in host (little-endian) order.
	for i := 0; i+4 <= len(raw); i += 4 {
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, _ := strconv.ParseUint(hexPort, 16, 16)
	return net.JoinHostPort(net.IP(raw).String(), strconv.FormatUint(port, 10))
}

// assertLoopbackOnly fails when n listens anywhere but 127.0.0.1, and
// checks that it listens where the harness says.
func assertLoopbackOnly(t *testing.T, n *Node) {
	t.Helper()
	got := listeners(t, n.Pid())
	for _, l := range got {
		_, addr, _ := strings.Cut(l, " ")
		if host, _, _ := net.SplitHostPort(addr); host != "127.0.0.1" {
			t.Errorf("%s listens on %s", n.label, l)
		}
	}
	for _, want := range []string{
		fmt.Sprintf("tcp 127.0.0.1:%d", n.P2PPort()),
		fmt.Sprintf("udp 127.0.0.1:%d", n.P2PPort()),
		fmt.Sprintf("tcp 127.0.0.1:%d", n.AuthRPCPort()),
		"tcp " + strings.TrimPrefix(n.RPCURL(), "http://"),
	} {
		if !strings.Contains(strings.Join(got, ","), want) {
			t.Errorf("%s does not listen on %s; listens on %v", n.label, want, got)
		}
	}
}
