package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store"
)

// ErrorBody is every error response.
type ErrorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errBadRequest(code, msg string) error { return &httpError{http.StatusBadRequest, code, msg} }

// classify maps domain errors onto HTTP. Store errors never show their
// driver text: the operator reads it in the log, the client gets "unavailable".
func classify(err error) (int, string, string) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.status, he.code, he.msg
	case errors.Is(err, registry.ErrUnauthenticated):
		return http.StatusUnauthorized, "unauthenticated", err.Error()
	case errors.Is(err, registry.ErrRevoked):
		return http.StatusUnauthorized, "revoked", err.Error()
	case errors.Is(err, registry.ErrNotOwner):
		return http.StatusForbidden, "not_owner", err.Error()
	case errors.Is(err, registry.ErrForbidden):
		return http.StatusForbidden, "forbidden", err.Error()
	case errors.Is(err, registry.ErrNotFound):
		return http.StatusNotFound, "not_found", err.Error()
	case errors.Is(err, registry.ErrMemberExists):
		return http.StatusConflict, "member_exists", err.Error()
	case errors.Is(err, registry.ErrStaleSeq):
		return http.StatusConflict, "stale_seq", err.Error()
	case errors.Is(err, registry.ErrInvalid):
		return http.StatusBadRequest, "invalid", err.Error()
	case errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable, "store_unavailable", "the registrar's store is unavailable; retry later"
	}
	return http.StatusInternalServerError, "internal", "internal error"
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg := classify(err)
	if status >= 500 {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, status, ErrorBody{Error: msg, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.Encode(v)
}
