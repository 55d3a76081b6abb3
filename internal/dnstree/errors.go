package dnstree

import (
	"errors"
	"fmt"

	"github.com/consortium/consortium/internal/registry"
)

var (
	// ErrNoTree: the member has no tree (unknown, revoked, or not built
	// yet). It wraps registry.ErrNotFound, so the HTTP layer's one error
	// mapping answers 404 without knowing this package.
	ErrNoTree = fmt.Errorf("%w: no DNS tree for this member", registry.ErrNotFound)
	// ErrConfig is a configuration that cannot work (no domain, no key).
	ErrConfig = errors.New("dnstree: bad configuration")
)
