package dashboard

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/registry"
)

// The stream is text/event-stream: one "snapshot" event with the whole
// State, then "delta" events with what changed, ": ping" comments while idle,
// and a last "error" event (an ErrorBody) when the credential stops being
// valid. The page reads it with fetch(), not EventSource, because
// EventSource cannot send an Authorization header.

// Delta is what changed since the last message on one stream.
type Delta struct {
	Now    time.Time         `json:"now"`
	Index  uint64            `json:"index"`
	Upsert []json.RawMessage `json:"upsert,omitempty"` // Nodes new or changed
	Remove []string          `json:"remove,omitempty"` // IDs no longer visible
	// Members and Blocks are sent whole, and only when they changed.
	Members json.RawMessage `json:"members,omitempty"`
	Blocks  json.RawMessage `json:"blocks,omitempty"`
	Chain   json.RawMessage `json:"chain,omitempty"`
	Events  []Event         `json:"events,omitempty"`
}

type stream struct {
	d    *Dashboard
	p    registry.Principal
	tok  string
	w    http.ResponseWriter
	rc   *http.ResponseController
	sent map[string][]byte // node ID -> the encoding the page holds
	menc []byte
	benc []byte
	cenc []byte
	cur  cursor
	idx  uint64
}

func (d *Dashboard) serveStream(w http.ResponseWriter, r *http.Request) {
	p, tok, err := d.authenticate(r)
	if err != nil {
		authError(w, err)
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		return
	}
	if !d.acquire(p.Name) {
		writeError(w, http.StatusTooManyRequests, api.CodeRateLimited, "too many open dashboard pages for this credential; close one")
		return
	}
	defer d.release(p.Name)
	rc := http.NewResponseController(w)
	// http.Server.ReadTimeout would otherwise cancel this response's
	// context once it passes: the request is read, only writes follow.
	_ = rc.SetReadDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	s := &stream{d: d, p: p, tok: tok, w: w, rc: rc, sent: map[string][]byte{}}
	ch := d.reg.Changed()
	v := d.view(p)
	for i, n := range v.nodes {
		s.sent[n.ID] = v.enc[i]
	}
	s.menc, s.benc, s.cenc, s.idx = v.menc, v.benc, v.cenc, v.index
	ev, cur := d.events(p, cursor{})
	s.cur = cur
	if s.send("snapshot", v.state(d.backlog(ev))) != nil {
		return
	}

	cfg := d.cfg
	tick := time.NewTicker(cfg.Tick)
	defer tick.Stop()
	beat := time.NewTicker(cfg.Heartbeat)
	defer beat.Stop()
	life := time.NewTimer(cfg.StreamLifetime)
	defer life.Stop()
	last := time.Now()
	ctx := r.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.done:
			return
		case <-life.C:
			return
		case <-beat.C:
			if s.write([]byte(": ping\n\n")) != nil {
				return
			}
			continue
		case <-ch:
		case <-tick.C:
		}
		if wait := cfg.MinInterval - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-d.done:
				t.Stop()
				return
			case <-t.C:
			}
		}
		// Take the channel before reading, so a change in between wakes us.
		ch = d.reg.Changed()
		if idx := d.reg.Index(); idx != s.idx {
			// A revocation moves the index: look at the credential again.
			if _, err := d.reg.Authenticate(s.tok); err != nil {
				code, msg := "unauthenticated", registry.ErrUnauthenticated.Error()
				if errors.Is(err, registry.ErrRevoked) {
					code, msg = "revoked", err.Error()
				}
				s.send("error", ErrorBody{Error: msg, Code: code})
				return
			}
		}
		sent, err := s.update()
		if err != nil {
			return
		}
		if sent {
			last = time.Now()
			beat.Reset(cfg.Heartbeat)
		}
	}
}

// update sends what changed since the last message, if anything did.
func (s *stream) update() (bool, error) {
	v := s.d.view(s.p)
	s.idx = v.index
	dl := Delta{Now: v.now, Index: v.index}
	seen := make(map[string]struct{}, len(v.nodes))
	for i, n := range v.nodes {
		seen[n.ID] = struct{}{}
		if !bytes.Equal(s.sent[n.ID], v.enc[i]) {
			dl.Upsert = append(dl.Upsert, v.enc[i])
			s.sent[n.ID] = v.enc[i]
		}
	}
	for id := range s.sent {
		if _, ok := seen[id]; !ok {
			delete(s.sent, id)
			dl.Remove = append(dl.Remove, id)
		}
	}
	sort.Strings(dl.Remove)
	if !bytes.Equal(s.menc, v.menc) {
		dl.Members, s.menc = v.menc, v.menc
	}
	if !bytes.Equal(s.benc, v.benc) {
		dl.Blocks, s.benc = v.benc, v.benc
	}
	if !bytes.Equal(s.cenc, v.cenc) {
		dl.Chain, s.cenc = v.cenc, v.cenc
	}
	dl.Events, s.cur = s.d.events(s.p, s.cur)
	if len(dl.Upsert) == 0 && len(dl.Remove) == 0 && dl.Members == nil && dl.Blocks == nil && dl.Chain == nil && len(dl.Events) == 0 {
		return false, nil
	}
	return true, s.send("delta", dl)
}

func (s *stream) send(event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	// json.Marshal never writes a newline, so one data line holds it all.
	msg := make([]byte, 0, len(b)+len(event)+16)
	msg = append(msg, "event: "...)
	msg = append(msg, event...)
	msg = append(msg, "\ndata: "...)
	msg = append(msg, b...)
	msg = append(msg, "\n\n"...)
	return s.write(msg)
}

func (s *stream) write(b []byte) error {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.d.cfg.WriteTimeout))
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (d *Dashboard) acquire(name string) bool {
	d.streamMu.Lock()
	defer d.streamMu.Unlock()
	if d.streams[name] >= d.cfg.MaxStreams {
		return false
	}
	d.streams[name]++
	d.open++
	select {
	case d.opened <- struct{}{}:
	default:
	}
	return true
}

func (d *Dashboard) release(name string) {
	d.streamMu.Lock()
	defer d.streamMu.Unlock()
	d.open--
	if d.streams[name]--; d.streams[name] <= 0 {
		delete(d.streams, name)
	}
}
