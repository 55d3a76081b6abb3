// Package httpapi is the registrar's HTTP face: routes, authentication,
// rate limits, wire types and the blocking peer-set query. It owns the
// mapping from domain errors to HTTP statuses; the registry knows nothing
// of HTTP.
package httpapi

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/registry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"
)

// Config tunes a Server. Zero values mean the defaults given per field.
type Config struct {
	Registry *registry.Registry
	// RateLimit is the sustained requests per second allowed per credential
	// (and per client address for unauthenticated requests). Default 2000:
	// one member credential serves all of that member's agents.
	RateLimit float64
	// Burst is the bucket size. Default 2 × RateLimit.
	Burst int
	// LegacyOpen enables the seed's unauthenticated POST / and the open
	// reads of what it posted. Default off.
	LegacyOpen bool
	// MaxWait caps a blocking query. Default 5 min.
	MaxWait time.Duration
	// MaxWatches caps the blocking queries one credential (a member with
	// all its agents, or the administrator) may hold open at once; one
	// more is refused with 429 too_many_watches. Default 1024
	// (DefaultMaxWatches).
	MaxWatches int
	// MaxConns caps the open connections of a server set up by Prepare;
	// MaxConnsPerIP caps those of one client address that have not
	// authenticated, MaxConnsPerMember those authenticated with one
	// credential. Defaults 4096, 1024 and 2048 (connlimit.go).
	MaxConns, MaxConnsPerIP, MaxConnsPerMember int
	// Metrics is where the server's metrics are registered. Default: a new
	// registry served on /metrics.
	Metrics *prometheus.Registry
	// Trees serves GET /v1/members/{name}/tree. Default: none (404).
	Trees TreeSource
	// Extra handlers mounted as-is (the dashboard at /ui/).
	Extra  map[string]http.Handler
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.RateLimit <= 0 {
		c.RateLimit = 2000
	}
	if c.Burst <= 0 {
		c.Burst = int(2 * c.RateLimit)
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 5 * time.Minute
	}
	if c.MaxWatches <= 0 {
		c.MaxWatches = DefaultMaxWatches
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxConnsPerIP <= 0 {
		c.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	if c.MaxConnsPerMember <= 0 {
		c.MaxConnsPerMember = DefaultMaxConnsPerMember
	}
	if c.Metrics == nil {
		c.Metrics = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Server serves the registrar API.
type Server struct {
	cfg Config
	reg *registry.Registry
	log *slog.Logger
	mux *http.ServeMux
	m   *metrics

	limMu    sync.Mutex
	limiters map[string]*rate.Limiter

	conns     *connLimiter
	watchMu   sync.Mutex
	watchesBy map[string]int // open blocking queries per principal
}

// New builds a server.
func New(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, reg: cfg.Registry, log: cfg.Logger, mux: http.NewServeMux(), limiters: map[string]*rate.Limiter{},
		conns: newConnLimiter(cfg.MaxConns, cfg.MaxConnsPerIP, cfg.MaxConnsPerMember, cfg.Logger), watchesBy: map[string]int{}}
	s.m = newMetrics(cfg.Metrics, cfg.Registry)
	s.route("GET /healthz", s.healthz, false)
	s.route("GET /readyz", s.readyz, false)
	s.mux.Handle("GET /metrics", s.limitByIP(promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{})))

	s.route("POST /v1/members", s.addMember, true)
	s.route("GET /v1/members", s.listMembers, true)
	s.route("DELETE /v1/members/{name}", s.revokeMember, true)
	s.route("POST /v1/members/{name}/credential", s.rotateCredential, true)
	s.route("GET /v1/members/{name}/tree", s.memberTree, true)
	s.route("POST /v1/nodes", s.register, true)
	s.route("GET /v1/nodes", s.listNodes, true)
	s.route("GET /v1/nodes/{id}", s.getNode, true)
	s.route("DELETE /v1/nodes/{id}", s.removeNode, true)
	s.route("POST /v1/nodes/{id}/free", s.freeNode, true)
	s.route("POST /v1/nodes/{id}/renew", s.renew, true)
	s.route("GET /v1/nodes/{id}/peers", s.peers, true)
	s.route("GET /v1/peers", s.rolePeers, true)
	s.route("GET /v1/events", s.listEvents, true)
	s.route("GET /v1/whoami", s.whoami, true)

	s.route("GET /{$}", s.legacyRead("bootnodes"), false)
	s.route("GET /enodes", s.legacyRead("enodes"), false)
	s.route("GET /staticenodes", s.legacyRead("staticenodes"), false)
	s.route("GET /parityenodes", s.legacyRead("parityenodes"), false)
	s.route("POST /{$}", s.legacyPost, false)
	for p, h := range cfg.Extra {
		s.mux.Handle(p, s.limitByIP(h))
	}
	s.mux.Handle("/", s.limitByIP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, ErrorBody{Error: "no such endpoint: " + r.Method + " " + clip(r.URL.Path), Code: api.CodeNoRoute})
	})))
	return s
}

// ServeHTTP implements http.Handler. A connection is not closed to make
// room while one of its requests is in a handler; a request without a
// credential is answered with "Connection: close", so an anonymous client
// holds a connection for one request only.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if tc := connOf(r.Context()); tc != nil {
		tc.busy.Add(1)
		defer tc.busy.Add(-1)
	}
	if r.Header.Get("Authorization") == "" {
		w.Header().Set("Connection", "close")
	}
	s.mux.ServeHTTP(w, r)
}

// limitByIP applies the per-address rate limit to a handler outside route
// (metrics, unknown routes, mounted extras): every route is limited.
func (s *Server) limitByIP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.allow("ip:" + clientIP(r)) {
			w.Header().Set("Connection", "close")
			s.writeError(w, r, errRateLimited)
			return
		}
		h.ServeHTTP(w, r)
	})
}

type ctxKey struct{}

type handler func(w http.ResponseWriter, r *http.Request) error

// route wraps a handler with panic recovery, metrics, rate limiting and
// (when auth) authentication. A panic answers 500 with a plain message:
// no stack trace ever reaches a client.
func (s *Server) route(pattern string, h handler, needAuth bool) {
	name := pattern
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, status: 200}
		start := time.Now()
		defer func() {
			if p := recover(); p != nil {
				s.log.Error("handler panic", "route", name, "panic", p)
				writeJSON(rec, http.StatusInternalServerError, ErrorBody{Error: "internal error", Code: api.CodeInternal})
			}
			s.m.observe(name, rec.status, time.Since(start))
		}()
		ctx := r.Context()
		anonymous := func() {
			// Anonymous and refused requests: one request per
			// connection, and a client that does not read its answer
			// cannot hold the handler.
			rec.Header().Set("Connection", "close")
			http.NewResponseController(w).SetWriteDeadline(time.Now().Add(anonWriteTimeout))
		}
		if needAuth || r.Header.Get("Authorization") != "" {
			p, err := s.authenticate(r)
			if err != nil {
				anonymous()
				if !s.allow("ip:" + clientIP(r)) {
					s.writeError(rec, r, errRateLimited)
					return
				}
				s.writeError(rec, r, err)
				return
			}
			if tc := connOf(ctx); tc != nil && !tc.authenticated(p.Name) {
				rec.Header().Set("Connection", "close")
				s.writeError(rec, r, errTooManyConns)
				return
			}
			if !s.allow("p:" + p.Name) {
				s.writeError(rec, r, errRateLimited)
				return
			}
			ctx = context.WithValue(ctx, ctxKey{}, p)
		} else {
			anonymous()
			if !s.allow("ip:" + clientIP(r)) {
				s.writeError(rec, r, errRateLimited)
				return
			}
		}
		if err := h(rec, r.WithContext(ctx)); err != nil {
			s.writeError(rec, r, err)
		}
	})
}

var errRateLimited = &httpError{http.StatusTooManyRequests, api.CodeRateLimited, "too many requests for this credential; slow down"}

var errTooManyConns = &httpError{http.StatusTooManyRequests, api.CodeTooManyConnections, "this credential holds too many connections, all busy; use fewer (keep-alive) connections"}

// watchSlot takes one of p's blocking-query slots; release gives it back.
// ok is false when p holds MaxWatches already.
func (s *Server) watchSlot(p string) (release func(), ok bool) {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	if s.watchesBy[p] >= s.cfg.MaxWatches {
		return nil, false
	}
	s.watchesBy[p]++
	return func() {
		s.watchMu.Lock()
		defer s.watchMu.Unlock()
		if s.watchesBy[p]--; s.watchesBy[p] <= 0 {
			delete(s.watchesBy, p)
		}
	}, true
}

func (s *Server) authenticate(r *http.Request) (registry.Principal, error) {
	tok, ok := api.Bearer(r.Header)
	if !ok {
		return registry.Principal{}, registry.ErrUnauthenticated
	}
	return s.reg.Authenticate(tok)
}

func principal(r *http.Request) (registry.Principal, bool) {
	p, ok := r.Context().Value(ctxKey{}).(registry.Principal)
	return p, ok
}

func (s *Server) allow(key string) bool {
	s.limMu.Lock()
	l, ok := s.limiters[key]
	if !ok {
		if len(s.limiters) > 100000 {
			// Bound memory against a flood of client addresses.
			s.limiters = map[string]*rate.Limiter{}
		}
		l = rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.Burst)
		s.limiters[key] = l
	}
	s.limMu.Unlock()
	return l.Allow()
}

func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return host
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.wrote {
		s.status, s.wrote = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.reg.Ready(ctx); err != nil {
		s.log.Warn("not ready", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{Error: "store unavailable", Code: api.CodeNotReady})
		return nil
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

// jitter spreads the timeouts of many waiters, as Consul does (wait/16).
func jitter(d time.Duration) time.Duration {
	if d < 16 {
		return d
	}
	return d + time.Duration(rand.Int64N(int64(d/16)))
}
