package devnet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"
)

// syncBuffer collects a devnet's lines for the test log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// rpcCall makes one JSON-RPC call to url (HTTP or IPC path).
func rpcCall(url string, out any, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpc.DialContext(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.CallContext(ctx, out, method, args...)
}

type header struct {
	Number hexutil.Uint64 `json:"number"`
	Hash   common.Hash    `json:"hash"`
}

func blockAt(url string, n uint64) (header, error) {
	var h *header
	if err := rpcCall(url, &h, "eth_getBlockByNumber", hexutil.EncodeUint64(n), false); err != nil {
		return header{}, err
	}
	if h == nil {
		return header{}, fmt.Errorf("no block %d", n)
	}
	return *h, nil
}

func headOf(url string) uint64 {
	var n hexutil.Uint64
	if rpcCall(url, &n, "eth_blockNumber") != nil {
		return 0
	}
	return uint64(n)
}

func signerOf(url string, n uint64) common.Address {
	var a common.Address
	rpcCall(url, &a, "clique_getSigner", hexutil.EncodeUint64(n))
	return a
}

// alive reports whether a process (or any member of its process group)
// is still there. A zombie counts as gone: it runs nothing.
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err == nil {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return false
		}
		// "pid (comm) S ...": the state follows the last ')'.
		st := string(b[bytes.LastIndexByte(b, ')')+2:])
		return !strings.HasPrefix(st, "Z")
	}
	return groupAlive(pid)
}

// groupAlive reports whether any process is in process group pgid.
func groupAlive(pgid int) bool {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			return true
		}
	}
	return false
}

// rssKiB is the resident memory of a process, from /proc.
func rssKiB(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
