package httpapi

import (
	"fmt"
	"net/http"

	"github.com/consortium/consortium/internal/registry"
)

// TreeSource is the registrar's EIP-1459 trees (internal/dnstree), one per
// member: Tree returns member's current tree as its JSON answer, or an
// error wrapping registry.ErrNotFound.
type TreeSource interface {
	Tree(member string) (any, error)
}

// memberTree answers GET /v1/members/{name}/tree: the member's signed node
// tree, the same records its DNS zone serves. The tree holds the member's
// private endpoints, so only the member itself and the administrator may
// read it; anyone else gets the 404 of a member that does not exist.
func (s *Server) memberTree(w http.ResponseWriter, r *http.Request) error {
	p, _ := principal(r)
	name := r.PathValue("name")
	if !p.Admin && p.Name != name {
		return fmt.Errorf("%w: no tree for member %q", registry.ErrNotFound, clip(name))
	}
	if s.cfg.Trees == nil {
		return fmt.Errorf("%w: this registrar serves no node trees (start it with --dns-listen)", registry.ErrNotFound)
	}
	v, err := s.cfg.Trees.Tree(name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}
