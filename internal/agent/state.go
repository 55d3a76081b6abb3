package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
)

// State is the last peer set the agent received, kept on disk so that a
// restart of the client (or of the agent) peers at once even while the
// registrar is down.
type State struct {
	Node      string   `json:"node,omitempty"`
	Index     uint64   `json:"index"`
	ETag      string   `json:"etag,omitempty"`
	Static    []string `json:"static"`
	Bootnodes []string `json:"bootnodes"`
	// Consensus is the answer's CometBFT peer list (BFT consortia).
	Consensus []string  `json:"consensus,omitempty"`
	Saved     time.Time `json:"saved"`
}

// StateFile is the file name inside the state directory.
const StateFile = "peers.json"

// LoadState reads the saved state; ok is false when there is none.
func LoadState(dir string) (State, bool, error) {
	var s State
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return s, false, nil
	}
	if err != nil {
		return s, false, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, false, fmt.Errorf("saved peer set %s is corrupt: %w", filepath.Join(dir, StateFile), err)
	}
	return s, true, nil
}

// SaveState writes the state atomically (temp file + rename).
func SaveState(dir string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, StateFile), b, 0o600)
}

func writeAtomic(path string, b []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// GethConfig is the cold-start config.toml the agent writes for geth:
// peers in [Node.P2P] (geth ≥ 1.11 ignores static-nodes.json), plus the
// listen address when given. Static peers are also trusted, so they get a
// slot even when --maxpeers is reached.
type GethConfig struct {
	ListenAddr string
	Static     []string
	Bootnodes  []string
	// Extra is appended verbatim after the [Node.P2P] keys (operator's own
	// settings for that section).
	Extra string
}

// Render produces the TOML text.
func (c GethConfig) Render() string {
	frag := httpapi.TOMLFragment(c.Static, c.Static, c.Bootnodes)
	var b strings.Builder
	b.WriteString("# Written by consortium agent; rewritten whenever the peer set changes.\n")
	b.WriteString(frag)
	// Same list for discv5, which geth keeps separately; written even when
	// empty, or geth would fall back to the mainnet discv5 bootnodes.
	b.WriteString("BootstrapNodesV5 = " + tomlList(c.Bootnodes) + "\n")
	if c.ListenAddr != "" {
		b.WriteString("ListenAddr = " + fmt.Sprintf("%q", c.ListenAddr) + "\n")
	}
	if c.Extra != "" {
		b.WriteString(c.Extra)
		if !strings.HasSuffix(c.Extra, "\n") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func tomlList(v []string) string {
	q := make([]string, len(v))
	for i, s := range v {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// WriteGethConfig writes path atomically.
func WriteGethConfig(path string, c GethConfig) error {
	return writeAtomic(path, []byte(c.Render()), 0o644)
}
