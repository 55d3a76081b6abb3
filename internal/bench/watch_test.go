package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/consortium/consortium/internal/registry"
)

// The watcher rounds themselves are load.Target's (PrimeWatchers,
// WatchRound); what is here reads the registry's own timestamp of a change
// from the admin event log.

func (r *registrar) events(ctx context.Context, after uint64) ([]registry.Event, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", r.URL()+"/v1/events?after="+strconv.FormatUint(after, 10), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.Admin)
	resp, err := r.HC.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/events: HTTP %d", resp.StatusCode)
	}
	var out struct {
		Events []registry.Event `json:"events"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out.Events, nil
}

func (r *registrar) lastEventSeq(ctx context.Context) (uint64, error) {
	ev, err := r.events(ctx, 0)
	if err != nil || len(ev) == 0 {
		return 0, err
	}
	return ev[len(ev)-1].Seq, nil
}

// eventTime is the registry's timestamp of node id's registration: taken
// under the registry's lock right after the store committed the record and
// the change index moved (internal/registry/nodes.go, Register).
func (r *registrar) eventTime(ctx context.Context, after uint64, id string) (time.Time, error) {
	ev, err := r.events(ctx, after)
	if err != nil {
		return time.Time{}, err
	}
	for _, e := range ev {
		if e.Node == id && (e.Kind == registry.EventRegistered || e.Kind == registry.EventUpdated) {
			return e.Time, nil
		}
	}
	return time.Time{}, fmt.Errorf("no registration event for %s", id[:8])
}
