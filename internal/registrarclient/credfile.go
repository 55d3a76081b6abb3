package registrarclient

import (
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// credential is the bearer credential a Client sends. With a file, it is
// read again when the file changes (checked at most once a second), so a
// member that rotates its credential (`consortium member rotate-credential
// --out FILE`) moves its running agents over by replacing the file: no
// restart, and the old credential's grace period covers the moment between.
type credential struct {
	mu      sync.Mutex
	value   string
	file    string
	mod     time.Time
	size    int64
	checked time.Time
	log     *slog.Logger
}

func newCredential(value, file string, log *slog.Logger) *credential {
	c := &credential{value: strings.TrimSpace(value), file: file, log: log}
	if file != "" {
		if fi, err := os.Stat(file); err == nil {
			c.mod, c.size = fi.ModTime(), fi.Size()
		}
		c.checked = time.Now()
	}
	return c
}

// get is the credential to send now. A file that cannot be read, or reads
// empty, leaves the last credential in use (a rename in progress, an
// operator's slip) and is reported.
func (c *credential) get() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.file == "" || time.Since(c.checked) < time.Second {
		return c.value
	}
	c.checked = time.Now()
	fi, err := os.Stat(c.file)
	if err != nil || (fi.ModTime().Equal(c.mod) && fi.Size() == c.size) {
		return c.value
	}
	b, err := os.ReadFile(c.file)
	v := strings.TrimSpace(string(b))
	if err != nil || v == "" {
		c.log.Warn("the credential file changed but cannot be used; keeping the last credential", "file", c.file, "err", err)
		return c.value
	}
	c.mod, c.size = fi.ModTime(), fi.Size()
	if v != c.value {
		c.value = v
		c.log.Info("the credential file changed: using the new credential", "file", c.file)
	}
	return c.value
}
