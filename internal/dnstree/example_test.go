package dnstree_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"

	"github.com/consortium/consortium/internal/dnstree"
	"github.com/consortium/consortium/internal/registry"
)

// Example wires the package into a registrar: the tree key from the data
// directory, the trees following the registry, the DNS server on the
// --dns-listen address with the members' networks, and the HTTP route.
// (Compiled, not run: it would bind port 53.)
func Example() {
	var (
		ctx     context.Context
		reg     *registry.Registry
		dataDir string
		mux     *http.ServeMux
		log     *slog.Logger
	)
	key, _, err := dnstree.LoadOrCreateKey(dataDir)
	if err != nil {
		return
	}
	trees, err := dnstree.New(dnstree.NewRegistrySource(reg), dnstree.Config{Domain: "example", Key: key, Logger: log})
	if err != nil {
		return
	}
	go trees.Run(ctx)
	log.Info("DNS discovery", "acme", trees.URL("acme")) // --discovery.dns enrtree://...@acme.nodes.example

	pc, l, err := dnstree.Listen("0.0.0.0:53")
	if err != nil {
		return
	}
	srv := dnstree.NewServer(trees, dnstree.ServerConfig{
		Access: dnstree.AllowNets(map[string][]netip.Prefix{"acme": {netip.MustParsePrefix("10.1.0.0/16")}}),
		Logger: log,
	})
	go srv.Serve(ctx, pc, l)

	// httpapi authenticates (the member itself or the administrator) and
	// renders errors with its one mapping; ErrNoTree is a registry.ErrNotFound.
	mux.Handle("GET /v1/members/{name}/tree", trees.Handler(func(w http.ResponseWriter, r *http.Request, err error) {
		http.Error(w, err.Error(), http.StatusNotFound)
	}))
}
