package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/registrarclient"
)

// announceCallTimeout bounds one registration or renewal of Announce.
const announceCallTimeout = 4 * time.Second

// Announce keeps a record that something else signs (the bootnode's own
// ENR) registered: it registers, renews at a third of the lease, and
// registers again when the lease lapsed or the record changed. It returns
// when ctx ends.
func Announce(ctx context.Context, rc *registrarclient.Client, role string, record func() string, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	var registered string // the record text last accepted
	var id string
	interval := time.Second
	backoff := 250 * time.Millisecond
	for {
		rec := record()
		var err error
		// Each call is bounded like the agent's (Config.CallTimeout): a call
		// stuck on a connection a network cut left behind must not stop the
		// announcements for good.
		cctx, cancel := context.WithTimeout(ctx, announceCallTimeout)
		if rec != registered {
			var resp api.RegisterResponse
			resp, err = rc.Register(cctx, api.RegisterRequest{Role: role, ENR: rec})
			if err == nil {
				registered, id = rec, resp.ID
				interval = max(time.Duration(resp.TTLSeconds*float64(time.Second))/3, 500*time.Millisecond)
				log.Info("announced", "role", role, "node", resp.ID, "enode", resp.Enode)
			}
		} else {
			_, err = rc.Renew(cctx, id, nil)
			if registrarclient.IsStatus(err, 404) {
				cancel()
				registered = "" // lapsed: register again at once
				continue
			}
		}
		cancel()
		wait := interval
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Warn("registrar call failed; retrying", "err", err)
			wait = backoff
			backoff = min(backoff*2, 5*time.Second)
		} else {
			backoff = 250 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}
