// Package dashboard is the registrar's web page (/ui/): members and their
// health, each member's nodes, the actual peer connections drawn as a graph
// with member boundaries, who sealed recent blocks, and a live event list.
//
// The page is plain HTML, CSS and JavaScript embedded with go:embed: no build
// step, nothing fetched from elsewhere. It asks for a credential, keeps it in
// the tab's sessionStorage and sends it in the Authorization header of every
// call; a credential is never part of a URL. Every answer is built from what
// registry.Nodes and registry.Events give that credential, so a member sees on
// the page exactly what the API shows it.
//
// Updates are pushed as server-sent events over one long response, woken by
// the registry's change channel and, for status reports that ride on lease
// renewals (which do not move the index), by a short tick. Nothing is
// computed while no page is open.
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/consortium/consortium/internal/api"
	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/governance"
	"github.com/consortium/consortium/internal/registry"
	"golang.org/x/time/rate"
)

//go:embed static
var staticFiles embed.FS

// Config tunes a Dashboard. Zero values mean the defaults given per field.
type Config struct {
	// Registry is the directory shown. Required.
	Registry *registry.Registry
	// Logger. Default slog.Default().
	Logger *slog.Logger
	// Prefix is the path the handler is mounted under. Default "/ui".
	Prefix string
	// Tick is how often an open page looks for changes that do not move
	// the registry's index: status reports ride on lease renewals. Default
	// 500 ms, so such a change shows within a second.
	Tick time.Duration
	// MinInterval is the least time between two updates sent to one page,
	// so a burst of registrations goes out as one. Default 100 ms.
	MinInterval time.Duration
	// Backlog is how many recent events a page gets when it opens. Default 200.
	Backlog int
	// Blocks is how many recent blocks are listed with their sealer. Default 24.
	Blocks int
	// HeadLag is how many blocks a member's head may trail the highest
	// head before the member counts as degraded. Default 16.
	HeadLag uint64
	// MaxStreams is how many open pages one credential may have. Default 16.
	MaxStreams int
	// RateLimit is how many state requests and stream openings per second
	// one credential may make (the API's own limiter does not cover
	// handlers mounted beside it). Default 10, with a burst of 3 × RateLimit.
	RateLimit float64
	// StreamLifetime ends a stream after this long; the page reconnects at
	// once, which checks its credential afresh. Default 10 min.
	StreamLifetime time.Duration
	// Heartbeat is how often an idle stream sends a comment, so proxies
	// keep it open. Default 15 s.
	Heartbeat time.Duration
	// WriteTimeout bounds one write to a page; a page that does not read
	// is dropped. Default 10 s.
	WriteTimeout time.Duration
	// Governance, when set, gives the chain's governance state and its
	// height (chainfollow.Follower.Governance): the consensus panel then
	// lists the open proposals with their votes and fault-tolerance
	// preview. Nil: the panel shows the chain's reports only.
	Governance func() (*governance.State, uint64)
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Prefix = "/" + strings.Trim(c.Prefix, "/")
	if c.Prefix == "/" {
		c.Prefix = "/ui"
	}
	if c.Tick <= 0 {
		c.Tick = 500 * time.Millisecond
	}
	if c.MinInterval <= 0 {
		c.MinInterval = 100 * time.Millisecond
	}
	if c.Backlog <= 0 {
		c.Backlog = 200
	}
	if c.Blocks <= 0 {
		c.Blocks = 24
	}
	if c.HeadLag == 0 {
		c.HeadLag = 16
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 16
	}
	if c.RateLimit <= 0 {
		c.RateLimit = 10
	}
	if c.StreamLifetime <= 0 {
		c.StreamLifetime = 10 * time.Minute
	}
	if c.Heartbeat <= 0 {
		c.Heartbeat = 15 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	return c
}

// Dashboard is the http.Handler of the page and its API. Mount it at
// Prefix+"/" (httpapi.Config.Extra{"/ui/": d}).
type Dashboard struct {
	cfg Config
	reg *registry.Registry
	log *slog.Logger
	mux *http.ServeMux
	trk *tracker

	done      chan struct{}
	closeOnce sync.Once

	viewMu sync.Mutex
	views  map[string]*view // by principal name

	streamMu sync.Mutex
	streams  map[string]int           // open streams by principal name
	limits   map[string]*rate.Limiter // by principal name: members and the administrator
	open     int                      // open streams in all, under streamMu
	// opened wakes Run when the first stream opens (capacity 1, never
	// blocks a sender).
	opened chan struct{}
}

// admin is the principal the tracker reads with. What it reads leaves this
// package only through the visibility filters (visibleEvent, and the
// per-principal node lists the registry filters itself).
var admin = registry.Principal{Name: auth.Admin, Admin: true}

// New builds the dashboard. It starts no goroutine: pages drive it. Run
// may be called to keep the derived events current while no page is open.
func New(cfg Config) *Dashboard {
	cfg = cfg.withDefaults()
	if cfg.Registry == nil {
		panic("dashboard: Config.Registry is required")
	}
	d := &Dashboard{
		cfg: cfg, reg: cfg.Registry, log: cfg.Logger, mux: http.NewServeMux(),
		trk: newTracker(1000, cfg.Blocks), done: make(chan struct{}),
		views: map[string]*view{}, streams: map[string]int{}, limits: map[string]*rate.Limiter{},
		opened: make(chan struct{}, 1),
	}
	static, _ := fs.Sub(staticFiles, "static")
	files := http.StripPrefix(cfg.Prefix+"/static/", http.FileServerFS(static))
	pre := cfg.Prefix
	d.mux.HandleFunc("GET "+pre+"/{$}", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		http.ServeFileFS(w, r, static, "index.html")
	})
	d.mux.Handle("GET "+pre+"/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		files.ServeHTTP(w, r)
	}))
	d.mux.HandleFunc("GET "+pre+"/api/state", d.serveState)
	d.mux.HandleFunc("GET "+pre+"/api/stream", d.serveStream)
	d.mux.HandleFunc(pre+"/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, api.CodeNoRoute, "no such endpoint: "+r.Method+" "+clip(r.URL.Path))
	})
	return d
}

// ServeHTTP implements http.Handler.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			d.log.Error("dashboard handler panic", "path", r.URL.Path, "panic", p)
			writeError(w, http.StatusInternalServerError, api.CodeInternal, "internal error")
		}
	}()
	d.mux.ServeHTTP(w, r)
}

// Close ends every open stream (pages reconnect to whoever serves next).
// Call it when the HTTP server shuts down: http.Server.Shutdown does not
// cancel running requests, it waits for them.
func (d *Dashboard) Close() { d.closeOnce.Do(func() { close(d.done) }) }

// Run keeps the derived events (peered, disconnected) and block sealers
// current between two looks of the open pages, until ctx ends or Close is
// called. It reads the nodes only while a page is open: with nobody
// watching, an idle registrar of 10,000 nodes would otherwise spend a few
// per cent of a core rebuilding a view nobody reads (issue 19). What
// happens while no page is open is therefore not derived; a page opened
// later starts from what it finds (the registry's own events, registered
// and expired, are kept regardless).
func (d *Dashboard) Run(ctx context.Context) {
	t := time.NewTimer(d.cfg.Tick)
	defer t.Stop()
	for {
		if d.openStreams() == 0 {
			select {
			case <-ctx.Done():
				return
			case <-d.done:
				return
			case <-d.opened:
			}
			continue
		}
		d.refreshTracker()
		t.Reset(d.cfg.Tick)
		select {
		case <-ctx.Done():
			return
		case <-d.done:
			return
		case <-t.C:
		}
	}
}

// openStreams is the number of open streams, every credential's.
func (d *Dashboard) openStreams() int {
	d.streamMu.Lock()
	defer d.streamMu.Unlock()
	return d.open
}

func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	// Everything the page needs comes from here; nothing inline, nothing
	// from elsewhere, no framing.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-cache")
}

// ErrorBody is every error answer: the API's.
type ErrorBody = api.ErrorBody

func writeError(w http.ResponseWriter, status int, code, msg string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="consortium"`)
	}
	writeJSON(w, status, ErrorBody{Error: msg, Code: code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func clip(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	q := strconv.QuoteToASCII(s)
	return q[1 : len(q)-1]
}

// authenticate reads the bearer credential from the Authorization header,
// and only from there, and spends one token of its rate limit.
func (d *Dashboard) authenticate(r *http.Request) (registry.Principal, string, error) {
	tok, ok := api.Bearer(r.Header)
	if !ok {
		return registry.Principal{}, "", registry.ErrUnauthenticated
	}
	p, err := d.reg.Authenticate(tok)
	if err == nil && !d.allow(p.Name) {
		err = errRateLimited
	}
	return p, tok, err
}

var errRateLimited = errors.New("too many dashboard requests for this credential; slow down")

func (d *Dashboard) allow(name string) bool {
	d.streamMu.Lock()
	l, ok := d.limits[name]
	if !ok {
		l = rate.NewLimiter(rate.Limit(d.cfg.RateLimit), int(3*d.cfg.RateLimit)+1)
		d.limits[name] = l
	}
	d.streamMu.Unlock()
	return l.Allow()
}

func authError(w http.ResponseWriter, err error) {
	if errors.Is(err, errRateLimited) {
		writeError(w, http.StatusTooManyRequests, api.CodeRateLimited, err.Error())
		return
	}
	if errors.Is(err, registry.ErrRevoked) {
		writeError(w, http.StatusUnauthorized, api.CodeRevoked, err.Error())
		return
	}
	writeError(w, http.StatusUnauthorized, api.CodeUnauthenticated, registry.ErrUnauthenticated.Error())
}

func (d *Dashboard) serveState(w http.ResponseWriter, r *http.Request) {
	p, _, err := d.authenticate(r)
	if err != nil {
		authError(w, err)
		return
	}
	v := d.view(p)
	ev, _ := d.events(p, cursor{})
	writeJSON(w, http.StatusOK, v.state(d.backlog(ev)))
}

// view is one principal's page at one moment, with each node's encoding
// kept so streams send only the nodes that changed.
type view struct {
	built   time.Time // monotonic, for reuse only
	index   uint64
	now     time.Time
	p       registry.Principal
	nodes   []Node
	enc     [][]byte
	members []Member
	blocks  []Block
	menc    []byte // members, blocks and the chain encoded
	benc    []byte
	cenc    []byte
}

// stateWire is State with the nodes already encoded, so a snapshot of a
// thousand nodes is not encoded twice.
type stateWire struct {
	Now       time.Time         `json:"now"`
	Principal string            `json:"principal"`
	Admin     bool              `json:"admin"`
	Index     uint64            `json:"index"`
	Members   json.RawMessage   `json:"members"`
	Nodes     []json.RawMessage `json:"nodes"`
	Blocks    json.RawMessage   `json:"blocks"`
	Chain     json.RawMessage   `json:"chain"`
	Events    []Event           `json:"events"`
}

func (v *view) state(ev []Event) stateWire {
	if ev == nil {
		ev = []Event{}
	}
	nodes := make([]json.RawMessage, len(v.enc))
	for i, b := range v.enc {
		nodes[i] = b
	}
	return stateWire{Now: v.now, Principal: v.p.Name, Admin: v.p.Admin, Index: v.index, Members: v.menc, Nodes: nodes, Blocks: v.benc, Chain: v.cenc, Events: ev}
}

// view returns p's page, shared by all of p's streams within half a tick.
func (d *Dashboard) view(p registry.Principal) *view {
	index := d.reg.Index()
	d.viewMu.Lock()
	defer d.viewMu.Unlock()
	if v, ok := d.views[p.Name]; ok && v.index == index && time.Since(v.built) < d.cfg.Tick/2 {
		return v
	}
	now := d.reg.Now()
	raw := d.reg.Nodes(p)
	nodes := make([]Node, len(raw))
	for i, rv := range raw {
		nodes[i] = nodeFromView(rv)
	}
	var all []registry.MemberView
	self := p.Name
	if p.Admin {
		d.trk.observe(nodes, index, now)
		all, _ = d.reg.Members(p)
		self = ""
	} else {
		d.refreshTracker()
	}
	for i := range nodes {
		n := &nodes[i]
		// Another member's peer changes are not this viewer's to time.
		if p.Admin || n.Member == p.Name {
			if c, ok := d.trk.changed(n.ID); ok && c.After(n.Changed) {
				n.Changed = c
			}
		}
	}
	v := &view{built: time.Now(), index: index, now: now.UTC(), p: p, nodes: nodes, enc: make([][]byte, len(nodes))}
	v.blocks = d.trk.recentBlocks()
	v.members = summarize(self, all, nodes, v.blocks, d.cfg.HeadLag)
	for i := range nodes {
		v.enc[i], _ = json.Marshal(nodes[i])
	}
	v.menc, _ = json.Marshal(v.members)
	v.benc, _ = json.Marshal(v.blocks)
	ch := chainOf(nodes)
	if ch != nil && d.cfg.Governance != nil {
		ch.withGovernance(d.cfg.Governance())
	}
	v.cenc, _ = json.Marshal(ch)
	d.views[p.Name] = v
	return v
}

// refreshTracker feeds the tracker the administrator's view when it is
// older than half a tick or the index moved.
func (d *Dashboard) refreshTracker() {
	index := d.reg.Index()
	if !d.trk.stale(index, time.Now(), d.cfg.Tick/2) {
		return
	}
	raw := d.reg.Nodes(admin)
	nodes := make([]Node, len(raw))
	for i, rv := range raw {
		nodes[i] = nodeFromView(rv)
	}
	d.trk.observe(nodes, index, d.reg.Now())
}

// cursor is how far a page has read the registry's and the derived events.
type cursor struct{ reg, derived uint64 }

// events returns the events after c that p may see, oldest first.
func (d *Dashboard) events(p registry.Principal, c cursor) ([]Event, cursor) {
	all := d.reg.Events(admin, c.reg)
	next := c
	if len(all) > 0 {
		next.reg = all[len(all)-1].Seq
	}
	src := all
	if !p.Admin {
		src = nil
		for _, e := range d.reg.Events(p, c.reg) {
			if e.Seq <= next.reg {
				src = append(src, e)
			}
		}
	}
	out := make([]Event, 0, len(src))
	for _, e := range src {
		out = append(out, Event{Key: "r" + strconv.FormatUint(e.Seq, 10), Time: e.Time, Kind: string(e.Kind), Member: e.Member, Node: e.Node, Role: e.Role})
	}
	der, dnext := d.trk.eventsAfter(p, c.derived)
	next.derived = dnext
	out = append(out, der...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out, next
}

func (d *Dashboard) backlog(ev []Event) []Event {
	if len(ev) > d.cfg.Backlog {
		ev = ev[len(ev)-d.cfg.Backlog:]
	}
	return ev
}
