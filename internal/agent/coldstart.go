package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/registrarclient"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// InitConfig configures Init (`consortium agent init`). Zero values mean
// the defaults given per field.
type InitConfig struct {
	Registrar *registrarclient.Client // required
	KeyPath   string                  // node key file; created (0600) if missing. Required.
	Role      string                  // required
	StateDir  string                  // required
	// ConfigPath is the config.toml to write. Required.
	ConfigPath string
	// ListenAddr goes into [Node.P2P] ListenAddr (e.g. "127.0.0.1:30303").
	ListenAddr string
	// NATIP is passed as --nat extip:IP; default --nat none. geth's own
	// default (UPnP) must never be used in a consortium.
	NATIP string
	// Deadline bounds the wait for the registrar. Default 60 s.
	Deadline time.Duration
	Logger   *slog.Logger
}

// InitResult says what Init wrote and the flags to start the client with.
type InitResult struct {
	NodeID     string
	KeyCreated bool
	// Source is "registrar" or "saved" (the registrar was unreachable and
	// the last saved set was used).
	Source    string
	Static    []string
	Bootnodes []string
	Flags     []string
}

// ErrNoPeerSet is returned when the registrar did not answer in time and no
// peer set was ever saved.
var ErrNoPeerSet = errors.New("no peer set")

// Init prepares a client's cold start: a node key, and a config.toml with
// the peers from the registrar (waited for with bounded backoff) or, when it
// stays unreachable, from the last saved set.
func Init(ctx context.Context, cfg InitConfig) (*InitResult, error) {
	if cfg.Registrar == nil || cfg.KeyPath == "" || cfg.Role == "" || cfg.StateDir == "" || cfg.ConfigPath == "" {
		return nil, errors.New("agent init: registrar, key path, role, state dir and config path are required")
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = 60 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	key, created, err := LoadOrCreateKey(cfg.KeyPath)
	if err != nil {
		return nil, err
	}
	id := enode.PubkeyToIDV4(&key.PublicKey).String()
	res := &InitResult{NodeID: id, KeyCreated: created}
	if created {
		log.Info("created node key", "file", cfg.KeyPath, "node", id)
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.Deadline)
	defer cancel()
	backoff := 250 * time.Millisecond
	var lastErr error
	for {
		p, err := cfg.Registrar.Peers(dctx, id)
		if registrarclient.IsStatus(err, 404) {
			// Never registered: the set a new node of this role gets.
			p, err = cfg.Registrar.PeersForRole(dctx, cfg.Role)
		}
		if err == nil {
			res.Source, res.Static, res.Bootnodes = "registrar", p.Static, p.Bootnodes
			st := State{Node: id, Index: p.Index, ETag: p.ETag, Static: p.Static, Bootnodes: p.Bootnodes, Saved: time.Now().UTC()}
			if p.Node != id {
				st.ETag = "" // a role answer is not this node's set
			}
			if err := SaveState(cfg.StateDir, st); err != nil {
				return nil, fmt.Errorf("saving the peer set: %w", err)
			}
			break
		}
		var ae *registrarclient.APIError
		if errors.As(err, &ae) && ae.Status != 429 && ae.Status < 500 {
			return nil, fmt.Errorf("the registrar refused: %w", err)
		}
		lastErr = err
		select {
		case <-dctx.Done():
		case <-time.After(backoff):
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		st, ok, serr := LoadState(cfg.StateDir)
		if serr != nil || !ok {
			return nil, fmt.Errorf("%w: the registrar at %s did not answer within %s (%v) and %s holds no saved peer set; start the registrar or check --registrar", ErrNoPeerSet, cfg.Registrar.URL(), cfg.Deadline, lastErr, cfg.StateDir)
		}
		log.Warn("registrar unreachable; using the last saved peer set", "saved", st.Saved, "peers", len(st.Static), "err", lastErr)
		res.Source, res.Static, res.Bootnodes = "saved", st.Static, st.Bootnodes
		break
	}
	if err := WriteGethConfig(cfg.ConfigPath, api.PeerConfig(cfg.ListenAddr, res.Static, res.Bootnodes)); err != nil {
		return nil, fmt.Errorf("writing %s: %w", cfg.ConfigPath, err)
	}
	nat := "none"
	if cfg.NATIP != "" {
		nat = "extip:" + cfg.NATIP
	}
	res.Flags = []string{"--config", cfg.ConfigPath, "--nodekey", cfg.KeyPath, "--bootnodes", strings.Join(res.Bootnodes, ","), "--nat", nat}
	return res, nil
}
