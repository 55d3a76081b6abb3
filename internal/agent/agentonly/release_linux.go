//go:build linux

package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// releaseBinaryPages drops this process's page table entries for its own
// binary's read-only file mappings (text, rodata, pclntab): its RSS then
// counts only the pages it touches again, which come back from the page
// cache (a minor fault, no disk read).
//
// Why: the kernel maps a binary's pages ahead of use (fault-around, and
// whole large folios on recent kernels), so a fresh agent has 12 of its
// 16 MB binary resident although its loop uses about 6 (docs/benchmarks.md,
// "Agent RSS"). The dropped pages stay in the page cache, shared with
// every process of the same file, and are reclaimed only under memory
// pressure, as before.
//
// Only mappings that hold no private copy of a page (smaps "Anonymous:
// 0 kB") are touched: dropping a copied page would bring the file's
// original back in its place. It returns the resident bytes it dropped.
func releaseBinaryPages() (int64, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, err
	}
	raw, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return 0, err
	}
	var released int64
	for _, m := range parseSmaps(raw) {
		if m.path != exe || strings.Contains(m.perms, "w") || m.anon != 0 || m.rss == 0 {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, m.start, m.end-m.start, syscall.MADV_DONTNEED); errno != 0 {
			return released, fmt.Errorf("madvise %x-%x: %w", m.start, m.end, errno)
		}
		released += m.rss
	}
	return released, nil
}

// mapping is one entry of /proc/PID/smaps; rss and anon are in bytes.
type mapping struct {
	start, end  uintptr
	perms, path string
	rss, anon   int64
}

// parseSmaps reads the mappings of /proc/PID/smaps: a header line
// "start-end perms offset dev inode [path]" and then "Key: N kB" lines.
func parseSmaps(raw []byte) []mapping {
	var out []mapping
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if lo, hi, ok := strings.Cut(f[0], "-"); ok && len(f) >= 5 {
			a, aerr := strconv.ParseUint(lo, 16, 64)
			b, berr := strconv.ParseUint(hi, 16, 64)
			if aerr == nil && berr == nil {
				m := mapping{start: uintptr(a), end: uintptr(b), perms: f[1]}
				if len(f) >= 6 {
					m.path = strings.Join(f[5:], " ")
				}
				out = append(out, m)
				continue
			}
		}
		if len(out) == 0 || len(f) != 3 || f[2] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "Rss:":
			out[len(out)-1].rss = n << 10
		case "Anonymous:":
			out[len(out)-1].anon = n << 10
		}
	}
	return out
}
