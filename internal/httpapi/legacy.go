package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"

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
				return errBadRequest("bad_query", "this endpoint takes one parameter, network")
			}
		}
		network := q.Get("network")
		if network != "" && network != "default" {
			if err := auth.ValidName(network); err != nil {
				return errBadRequest("bad_query", "network must be a member name")
			}
		}
		var pp *registry.Principal
		if p, ok := principal(r); ok {
			pp = &p
		} else if !s.cfg.LegacyOpen {
			return registry.ErrUnauthenticated
		}
		v, err := s.reg.Legacy(pp, network, s.cfg.LegacyOpen)
		if err != nil {
			return err
		}
		switch kind {
		case "bootnodes":
			writeText(w, strings.Join(v.Bootnodes, ","))
		case "enodes":
			writeText(w, strings.Join(v.Enodes, ","))
		case "parityenodes":
			writeText(w, strings.Join(v.Enodes, "\n"))
		case "staticenodes":
			w.Header().Set("Content-Type", "application/json")
			b, _ := json.Marshal(v.Enodes)
			w.Write(b)
		}
		return nil
	}
}

func writeText(w http.ResponseWriter, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte(s))
}

func (s *Server) legacyPost(w http.ResponseWriter, r *http.Request) error {
	if !s.cfg.LegacyOpen {
		return &httpError{http.StatusForbidden, "legacy_disabled", "the open legacy POST / is disabled; register with POST /v1/nodes and a member credential (or start the registrar with --legacy-open-post, which is insecure)"}
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
