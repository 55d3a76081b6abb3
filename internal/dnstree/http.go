package dnstree

import (
	"encoding/json"
	"net/http"
)

// Handler serves GET /v1/members/{name}/tree: the member's tree as
// TreeView JSON, for clients that fetch over HTTPS instead of DNS. The
// route must authenticate first (the member itself or the administrator:
// the tree holds private endpoints); writeErr renders errors (ErrNoTree
// wraps registry.ErrNotFound), so the API keeps one error mapping.
func (t *Trees) Handler(writeErr func(http.ResponseWriter, *http.Request, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := t.Tree(r.PathValue("name"))
		if err != nil {
			writeErr(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(v)
	})
}
