//go:build linux

package devnet

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// keepLogsEnv names a directory that receives a failed devnet test's logs
// (every geth's, the components' devnet.log, the operator's lines): the
// devnet's own directory is a t.TempDir, gone when the test ends, and a
// stall seen once in CI must be diagnosable from that run.
const keepLogsEnv = "CONSORTIUM_DEVNET_LOGS"

// keepLogs, registered right after the devnet's directory is made (so it
// runs after the devnet's Close and before the directory is removed),
// copies dir/logs and the operator's lines to $CONSORTIUM_DEVNET_LOGS when
// the test failed, and prints the tail of each geth log either way.
func keepLogs(t *testing.T, dir string, out *syncBuffer) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs := filepath.Join(dir, "logs")
		if dst := os.Getenv(keepLogsEnv); dst != "" {
			dst = filepath.Join(dst, strings.ReplaceAll(t.Name(), "/", "_")+"-"+time.Now().Format("20060102-150405"))
			if err := copyTree(logs, dst); err != nil {
				t.Logf("copying the devnet's logs to %s: %v", dst, err)
			} else {
				os.WriteFile(filepath.Join(dst, "operator.txt"), []byte(out.String()), 0o644)
				t.Logf("the devnet's logs are kept in %s", dst)
			}
		} else {
			t.Logf("set %s=DIR to keep the devnet's logs of a failed run", keepLogsEnv)
		}
		entries, _ := os.ReadDir(logs)
		for _, e := range entries {
			if e.Name() == "devnet.log" || !strings.HasSuffix(e.Name(), ".log") {
				continue
			}
			t.Logf("last lines of %s:\n%s", e.Name(), tailLines(filepath.Join(logs, e.Name()), 25))
		}
	})
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		to := filepath.Join(dst, rel)
		if e.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
}

// tailLines is the last n lines of a file.
func tailLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
