// Package registrarclient is the Go client of the registrar's HTTP API, used
// by the CLI, the agent and the bootnode.
package registrarclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/registry"
)

// APIError is an error answered by the registrar.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("registrar: %s (HTTP %d %s)", e.Message, e.Status, e.Code)
}

// IsStatus reports whether err is an APIError with that status.
func IsStatus(err error, status int) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == status
}

// ErrUnreachable wraps transport failures: the registrar did not answer.
var ErrUnreachable = errors.New("registrar unreachable")

// Config for a Client. Zero values mean defaults.
type Config struct {
	URL        string // default http://127.0.0.1:9898
	Credential string // bearer credential
	// CAFile is a PEM file of CAs to trust for an https URL.
	CAFile string
	// AllowInsecure permits sending the credential over plain http to a
	// host that is not loopback. Default refuse (DESIGN.md, Security 7).
	AllowInsecure bool
	HTTPClient    *http.Client
}

// Client talks to one registrar.
type Client struct {
	base *url.URL
	cred string
	hc   *http.Client
}

// New validates cfg and returns a client.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		cfg.URL = "http://127.0.0.1:9898"
	}
	u, err := url.Parse(strings.TrimRight(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("registrar URL %q must be http(s)://host:port", cfg.URL)
	}
	if u.Scheme == "http" && cfg.Credential != "" && !cfg.AllowInsecure && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("refusing to send a credential over plain http to %s: use https, or allow it explicitly", u.Host)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
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
	return &Client{base: u, cred: strings.TrimSpace(cfg.Credential), hc: hc}, nil
}

func isLoopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}

// URL is the registrar's base URL.
func (c *Client) URL() string { return c.base.String() }

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body any, hdr http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base.String() + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cred != "" {
		req.Header.Set("Authorization", "Bearer "+c.cred)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	return resp, nil
}

func (c *Client) call(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.do(ctx, method, path, nil, body, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return decode(resp, out)
}

func decode(resp *http.Response, out any) error {
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnreachable, err)
	}
	if resp.StatusCode >= 400 {
		var eb httpapi.ErrorBody
		if json.Unmarshal(b, &eb) != nil || eb.Error == "" {
			eb.Error = strings.TrimSpace(string(b))
			if len(eb.Error) > 200 {
				eb.Error = eb.Error[:200]
			}
		}
		return &APIError{Status: resp.StatusCode, Code: eb.Code, Message: eb.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("registrar answered invalid JSON: %w", err)
	}
	return nil
}

// AddMember creates a member; the returned credential is shown only now.
func (c *Client) AddMember(ctx context.Context, name string) (httpapi.MemberCreated, error) {
	var out httpapi.MemberCreated
	err := c.call(ctx, "POST", "/v1/members", httpapi.MemberRequest{Name: name}, &out)
	return out, err
}

// Members lists members (administrator).
func (c *Client) Members(ctx context.Context) ([]registry.MemberView, error) {
	var out struct {
		Members []registry.MemberView `json:"members"`
	}
	err := c.call(ctx, "GET", "/v1/members", nil, &out)
	return out.Members, err
}

// RevokeMember revokes a member (administrator).
func (c *Client) RevokeMember(ctx context.Context, name string) (registry.MemberView, error) {
	var out registry.MemberView
	err := c.call(ctx, "DELETE", "/v1/members/"+url.PathEscape(name), nil, &out)
	return out, err
}

// Register registers or updates a node record.
func (c *Client) Register(ctx context.Context, req httpapi.RegisterRequest) (httpapi.RegisterResponse, error) {
	var out httpapi.RegisterResponse
	err := c.call(ctx, "POST", "/v1/nodes", req, &out)
	return out, err
}

// Renew extends a node's lease, reporting its status.
func (c *Client) Renew(ctx context.Context, id string, st *registry.Status) (httpapi.RenewResponse, error) {
	var out httpapi.RenewResponse
	var body any
	if st != nil {
		body = httpapi.RenewRequest{Status: st}
	}
	err := c.call(ctx, "POST", "/v1/nodes/"+url.PathEscape(id)+"/renew", body, &out)
	return out, err
}

// Remove takes a node out of the directory.
func (c *Client) Remove(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/v1/nodes/"+url.PathEscape(id), nil, nil)
}

// Nodes lists the nodes the credential may see.
func (c *Client) Nodes(ctx context.Context) ([]registry.NodeView, error) {
	var out struct {
		Nodes []registry.NodeView `json:"nodes"`
	}
	err := c.call(ctx, "GET", "/v1/nodes", nil, &out)
	return out.Nodes, err
}

// Peers is a peer-set answer with its validators.
type Peers struct {
	registry.PeerSet
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
func (c *Client) WatchPeers(ctx context.Context, id string, index uint64, etag string, wait time.Duration) (*Peers, error) {
	q := url.Values{}
	hdr := http.Header{}
	if wait > 0 {
		q.Set("index", strconv.FormatUint(index, 10))
		q.Set("wait", wait.String())
	}
	if etag != "" {
		hdr.Set("If-None-Match", etag)
	}
	resp, err := c.do(ctx, "GET", "/v1/nodes/"+url.PathEscape(id)+"/peers", q, nil, hdr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &Peers{ETag: resp.Header.Get("ETag")}
	if resp.StatusCode == http.StatusNotModified {
		out.NotModified = true
		out.Index, _ = strconv.ParseUint(resp.Header.Get("X-Consortium-Index"), 10, 64)
		return out, nil
	}
	if err := decode(resp, &out.PeerSet); err != nil {
		return nil, err
	}
	return out, nil
}

// PeersForRole fetches the peer set a new node with role would get.
func (c *Client) PeersForRole(ctx context.Context, role string) (*Peers, error) {
	resp, err := c.do(ctx, "GET", "/v1/peers", url.Values{"role": {role}}, nil, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &Peers{ETag: resp.Header.Get("ETag")}
	if err := decode(resp, &out.PeerSet); err != nil {
		return nil, err
	}
	return out, nil
}

// PeersText fetches a peer set rendered as format (bootnodes, toml, enr).
func (c *Client) PeersText(ctx context.Context, id, format string) (string, error) {
	resp, err := c.do(ctx, "GET", "/v1/nodes/"+url.PathEscape(id)+"/peers", url.Values{"format": {format}}, nil, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return "", decode(resp, nil)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	return string(b), err
}

// Ready asks /readyz.
func (c *Client) Ready(ctx context.Context) error {
	return c.call(ctx, "GET", "/readyz", nil, nil)
}
