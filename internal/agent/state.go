package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/atomicfile"
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
	return atomicfile.Write(filepath.Join(dir, StateFile), b, 0o600)
}

// gethConfigHeader heads the config.toml the agent writes.
const gethConfigHeader = "# Written by consortium agent; rewritten whenever the peer set changes.\n"

// WriteGethConfig writes geth's cold-start config.toml atomically. c is
// rendered by the one writer the registrar's format=toml answer uses too
// (api.GethConfig); the agent's is api.PeerConfig of its peer set: static
// peers trusted, bootnodes for discv4 and discv5.
func WriteGethConfig(path string, c api.GethConfig) error {
	return atomicfile.Write(path, []byte(gethConfigHeader+c.Render()), 0o644)
}
