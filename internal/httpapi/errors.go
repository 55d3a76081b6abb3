package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/registry"
	"github.com/consortium/consortium/internal/store"
)

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
		return http.StatusUnauthorized, api.CodeUnauthenticated, err.Error()
	case errors.Is(err, registry.ErrRevoked):
		return http.StatusUnauthorized, api.CodeRevoked, err.Error()
	case errors.Is(err, registry.ErrNotOwner):
		return http.StatusForbidden, api.CodeNotOwner, err.Error()
	case errors.Is(err, registry.ErrForbidden):
		return http.StatusForbidden, api.CodeForbidden, err.Error()
	case errors.Is(err, registry.ErrNotFound):
		return http.StatusNotFound, api.CodeNotFound, err.Error()
	case errors.Is(err, registry.ErrChainGoverned):
		return http.StatusConflict, api.CodeChainGoverned, err.Error()
	case errors.Is(err, registry.ErrMemberExists):
		return http.StatusConflict, api.CodeMemberExists, err.Error()
	case errors.Is(err, registry.ErrStaleSeq):
		return http.StatusConflict, api.CodeStaleSeq, err.Error()
	case errors.Is(err, registry.ErrInvalid):
		return http.StatusBadRequest, api.CodeInvalid, err.Error()
	case errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable, api.CodeStoreUnavailable, "the registrar's store is unavailable; retry later"
	}
	return http.StatusInternalServerError, api.CodeInternal, "internal error"
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
