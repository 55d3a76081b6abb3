// Package registrarclient is the Go client of the registrar's HTTP API, used
// by the CLI, the agent and the bootnode.
//
// A client may be given several URLs, replicas of one registrar. It sends
// every request to the current one and moves on to the next only when that
// fails (no connection, a broken or timed-out exchange, a 502, 503 or 504),
// sending the request again there when doing so cannot act twice or outlive
// the caller (failover.go). An answer, even a refusal, is never sent on.
package registrarclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/consortium/consortium/internal/api"
)

// DefaultURL is the registrar a zero Config talks to.
const DefaultURL = "http://127.0.0.1:9898"

// DialTimeout bounds connecting to one registrar URL with the default
// transport, so that a replica that is down (or a host that drops packets)
// costs about a second before the next URL is tried, and a watcher resumes
// on another replica within two. Looking up the URL's host name comes
// before, bounded by LookupTimeout (resolve.go).
const DialTimeout = time.Second

// Config for a Client. Zero values mean defaults.
type Config struct {
	// URL is the registrar's base URL, or several comma-separated base URLs
	// of replicas of one registrar ("https://r1:9898,https://r2:9898"),
	// tried in that order. Default DefaultURL.
	URL        string
	Credential string // bearer credential
	// CredentialFile, when Credential was read from it, is read again
	// when it changes, so a rotated credential is used without a restart.
	CredentialFile string
	// CAFile is a PEM file of CAs to trust for an https URL.
	CAFile string
	// AllowInsecure permits sending the credential over plain http to a
	// host that is not loopback. Default refuse (docs/operations.md, "TLS").
	AllowInsecure bool
	// HTTPClient replaces the default client (whose transport resolves
	// host names as Resolver says, dials with DialTimeout and trusts CAFile).
	HTTPClient *http.Client
	// Resolver looks up the URLs' host names for the default transport
	// (not with HTTPClient). Each attempt waits at most LookupTimeout for
	// its name, and the last answer serves while lookups fail (resolve.go).
	// Default: the system's resolver, a new net.Resolver for each lookup.
	// A *net.Resolver given here shares a running lookup of a name with a
	// new one, so an answer after DNS recovers can come up to 2 s late.
	Resolver Resolver
	// Logger reports moving from a failed URL to the next. Default: no log.
	Logger *slog.Logger
}

// Client talks to one registrar, through one or several URLs. It keeps a
// current URL, used for every request until it fails; then the next one in
// the list becomes current (see send for which requests are sent again).
// A Client is safe for concurrent use.
type Client struct {
	bases []string      // validated base URLs, without a trailing slash
	cur   atomic.Uint32 // index into bases
	cred  *credential
	hc    *http.Client
	names *names // the default transport's name cache; nil with Config.HTTPClient
	log   *slog.Logger
}

// New validates cfg and returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		cfg.URL = DefaultURL
	}
	urls, err := parseURLs(cfg.URL)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cred: newCredential(cfg.Credential, cfg.CredentialFile, log), log: log}
	bases := make([]string, len(urls))
	for i, u := range urls {
		if u.Scheme == "http" && cfg.Credential != "" && !cfg.AllowInsecure && !isLoopback(u.Hostname()) {
			return nil, fmt.Errorf("refusing to send a credential over plain http to %s: use https, or allow it explicitly", u.Host)
		}
		bases[i] = u.String()
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		// TCP keep-alive probes notice a replica whose host vanished in
		// the middle of a blocking query within about 11 s, instead of the
		// query's whole deadline.
		d := &net.Dialer{Timeout: DialTimeout, KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3}}
		// Over https the registrar speaks HTTP/2: every request to a replica
		// shares one connection, and TCP keep-alive probes stop while data
		// waits unacknowledged (a request written during a network cut), so
		// without HTTP/2 pings a connection the cut killed would hold every
		// later request until TCP gives up, many minutes on. Pings close it
		// within about 8 s of silence.
		tr.HTTP2 = &http.HTTP2Config{SendPingTimeout: 5 * time.Second, PingTimeout: 3 * time.Second, WriteByteTimeout: 5 * time.Second}
		c.names = newNames(cfg.Resolver, log)
		tr.DialContext = (&dialer{names: c.names, net: d}).DialContext
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("reading CA file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA file %s holds no PEM certificate", cfg.CAFile)
			}
			tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
		hc = &http.Client{Transport: tr}
	}
	c.bases, c.hc = bases, hc
	return c, nil
}

// URL is the current base URL: the one the next request goes to first.
func (c *Client) URL() string { return c.bases[c.cur.Load()] }

// URLs are all the base URLs, in the configured order.
func (c *Client) URLs() []string { return slices.Clone(c.bases) }

func (c *Client) call(ctx context.Context, k kind, method, path string, body, out any) error {
	r := request{kind: k, method: method, path: path}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r.body = b
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	return decode(resp, out)
}

func (r *response) apiError() *APIError {
	var eb api.ErrorBody
	if json.Unmarshal(r.body, &eb) != nil || eb.Error == "" {
		eb.Error = strings.TrimSpace(string(r.body))
		if len(eb.Error) > 200 {
			eb.Error = eb.Error[:200]
		}
	}
	return &APIError{Status: r.status, Code: eb.Code, Message: eb.Error}
}

func decode(resp *response, out any) error {
	if resp.status >= 400 {
		return resp.apiError()
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("registrar answered invalid JSON: %w", err)
	}
	return nil
}

// AddMember creates a member; the returned credential is shown only now.
func (c *Client) AddMember(ctx context.Context, name string) (api.MemberCreated, error) {
	var out api.MemberCreated
	err := c.call(ctx, once, "POST", "/v1/members", api.MemberRequest{Name: name}, &out)
	return out, err
}

// Members lists members (administrator).
func (c *Client) Members(ctx context.Context) ([]api.MemberView, error) {
	var out api.MemberList
	err := c.call(ctx, repeatable, "GET", "/v1/members", nil, &out)
	return out.Members, err
}

// RevokeMember revokes a member (administrator).
func (c *Client) RevokeMember(ctx context.Context, name string) (api.MemberView, error) {
	var out api.MemberView
	err := c.call(ctx, repeatable, "DELETE", "/v1/members/"+url.PathEscape(name), nil, &out)
	return out, err
}

// RotateCredential replaces member name's credential (its own, or as the
// administrator); the replaced one stays valid for grace. The new
// credential is in the answer only: the call is not retried, since a retry
// would rotate again.
func (c *Client) RotateCredential(ctx context.Context, name string, grace time.Duration) (api.CredentialRotated, error) {
	var out api.CredentialRotated
	g := grace.String()
	err := c.call(ctx, once, "POST", "/v1/members/"+url.PathEscape(name)+"/credential", api.CredentialRequest{Grace: &g}, &out)
	return out, err
}

// Register registers or updates a node record.
func (c *Client) Register(ctx context.Context, req api.RegisterRequest) (api.RegisterResponse, error) {
	var out api.RegisterResponse
	err := c.call(ctx, repeatable, "POST", "/v1/nodes", req, &out)
	return out, err
}

// Renew extends a node's lease, reporting its status.
func (c *Client) Renew(ctx context.Context, id string, st *api.Status) (api.RenewResponse, error) {
	var out api.RenewResponse
	var body any
	if st != nil {
		body = api.RenewRequest{Status: st}
	}
	err := c.call(ctx, repeatable, "POST", "/v1/nodes/"+url.PathEscape(id)+"/renew", body, &out)
	return out, err
}

// Remove takes a node out of the directory.
func (c *Client) Remove(ctx context.Context, id string) error {
	return c.call(ctx, repeatable, "DELETE", "/v1/nodes/"+url.PathEscape(id), nil, nil)
}

// Nodes lists the nodes the credential may see.
func (c *Client) Nodes(ctx context.Context) ([]api.NodeView, error) {
	var out api.NodeList
	err := c.call(ctx, repeatable, "GET", "/v1/nodes", nil, &out)
	return out.Nodes, err
}

// Peers is a peer-set answer with its validators.
type Peers struct {
	api.PeerSet
	ETag string
	// NotModified is set when the registrar confirmed the caller's ETag.
	NotModified bool
}

// Peers fetches a node's peer set at once.
func (c *Client) Peers(ctx context.Context, id string) (*Peers, error) {
	return c.WatchPeers(ctx, id, 0, "", 0)
}

// WatchPeers is the blocking query: it returns when the node's peer set
// differs from etag, or after wait (NotModified then). index and etag come
// from the previous answer; zero values fetch at once.
//
// With several URLs, a blocking query (wait > 0) that fails after it was
// sent (the replica died mid-wait, or answered 502/503/504) makes the next
// URL current and returns the error at once: the caller re-issues it, and
// the ETag makes the new replica answer from where the old one left off.
// One that could not connect goes to the next URL straight away.
func (c *Client) WatchPeers(ctx context.Context, id string, index uint64, etag string, wait time.Duration) (*Peers, error) {
	r := request{kind: repeatable, method: "GET", path: "/v1/nodes/" + url.PathEscape(id) + "/peers", query: url.Values{}, header: http.Header{}}
	if wait > 0 {
		r.kind = blocking
		r.query.Set("index", strconv.FormatUint(index, 10))
		r.query.Set("wait", wait.String())
	}
	if etag != "" {
		r.header.Set("If-None-Match", etag)
	}
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	out := &Peers{ETag: resp.header.Get("ETag")}
	if resp.status == http.StatusNotModified {
		out.NotModified = true
		out.Index, _ = strconv.ParseUint(resp.header.Get("X-Consortium-Index"), 10, 64)
		return out, nil
	}
	if err := decode(resp, &out.PeerSet); err != nil {
		return nil, err
	}
	return out, nil
}

// PeersForRole fetches the peer set a new node with role would get.
func (c *Client) PeersForRole(ctx context.Context, role string) (*Peers, error) {
	resp, err := c.send(ctx, request{kind: repeatable, method: "GET", path: "/v1/peers", query: url.Values{"role": {role}}})
	if err != nil {
		return nil, err
	}
	out := &Peers{ETag: resp.header.Get("ETag")}
	if err := decode(resp, &out.PeerSet); err != nil {
		return nil, err
	}
	return out, nil
}

// PeersText fetches a peer set rendered as format (bootnodes, toml, enr).
func (c *Client) PeersText(ctx context.Context, id, format string) (string, error) {
	resp, err := c.send(ctx, request{kind: repeatable, method: "GET", path: "/v1/nodes/" + url.PathEscape(id) + "/peers", query: url.Values{"format": {format}}})
	if err != nil {
		return "", err
	}
	if resp.status >= 400 {
		return "", decode(resp, nil)
	}
	return string(resp.body), nil
}

// Ready asks /readyz.
func (c *Client) Ready(ctx context.Context) error {
	return c.call(ctx, repeatable, "GET", "/readyz", nil, nil)
}
