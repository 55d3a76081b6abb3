package httpapi

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/registry"
)

// legacyRead serves the seed registrars' read endpoints in their shapes:
// GET / and /enodes a comma-separated line, /staticenodes a JSON array,
// /parityenodes one enode per line. ?network= names a member.
func (s *Server) legacyRead(kind string) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		q := r.URL.Query()
		for k, vs := range q {
			if k != "network" || len(vs) != 1 {
				return errBadRequest(api.CodeBadQuery, "this endpoint takes one parameter, network")
			}
		}
		network := q.Get("network")
		if network != "" && network != "default" {
			if err := auth.ValidName(network); err != nil {
				return errBadRequest(api.CodeBadQuery, "network must be a member name")
			}
		}
		var pp *registry.Principal
		if p, ok := principal(r); ok {
			pp = &p
		} else if !s.cfg.LegacyOpen {
			return registry.ErrUnauthenticated
		}
		a, err := s.reg.LegacyAnswer(pp, network, s.cfg.LegacyOpen)
		if err != nil {
			return err
		}
		// Rendered once per change and shared by every reader; a reader
		// holding the same body gets a 304.
		out := a.Render(kind, legacyRenderers[kind])
		h := w.Header()
		h.Set("ETag", out.ETag)
		h.Set("X-Consortium-Index", strconv.FormatUint(a.Index, 10))
		h.Set("Cache-Control", "no-cache")
		if inm := r.Header.Get("If-None-Match"); inm != "" && etagMatch(inm, out.ETag) {
			w.WriteHeader(http.StatusNotModified)
			return nil
		}
		ct := "text/plain; charset=utf-8"
		if kind == "staticenodes" {
			ct = "application/json"
		}
		h.Set("Content-Type", ct)
		h.Set("Vary", "Accept-Encoding")
		body := out.Body
		if len(body) >= gzipMin && acceptsGzip(r.Header.Get("Accept-Encoding")) {
			body = gzipOnce(out)
			h.Set("Content-Encoding", "gzip")
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body)
		return nil
	}
}

// legacyRenderers render the seed's read endpoints in their shapes.
var legacyRenderers = map[string]func(registry.LegacyView) []byte{
	"bootnodes":    func(v registry.LegacyView) []byte { return []byte(strings.Join(v.Bootnodes, ",")) },
	"enodes":       func(v registry.LegacyView) []byte { return []byte(strings.Join(v.Enodes, ",")) },
	"parityenodes": func(v registry.LegacyView) []byte { return []byte(strings.Join(v.Enodes, "\n")) },
	"staticenodes": func(v registry.LegacyView) []byte { b, _ := json.Marshal(v.Enodes); return b },
}

func (s *Server) legacyPost(w http.ResponseWriter, r *http.Request) error {
	if !s.cfg.LegacyOpen {
		return &httpError{http.StatusForbidden, api.CodeLegacyDisabled, "the open legacy POST / is disabled; register with POST /v1/nodes and a member credential (or start the registrar with --legacy-open-post, which is insecure)"}
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	lp, err := DecodeLegacyPost(r.Header.Get("Content-Type"), b, r.URL.Query())
	if err != nil {
		return err
	}
	if err := s.reg.PostLegacy(r.Context(), lp.Network, lp.Enode); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"enode": lp.Enode, "network": lp.Network, "accepted": true})
	return nil
}
