package load

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Target is one or more registrars under load, reached over HTTP. With
// several (replicas of one consortium), node k is served by its home
// replica, URLs[k%len(URLs)].
type Target struct {
	URLs  []string
	HC    *http.Client
	Admin string            // the administrator credential
	Creds map[string]string // member -> credential

	// CountParked, when set, counts the waiting blocking queries instead of
	// scraping every registrar's /metrics (an in-process registrar reads its
	// own gauge).
	CountParked func(ctx context.Context) (int, error)
}

// NewHTTPClient is the load generator's client: enough idle connections per
// host for every concurrent client, no proxy, no compression.
func NewHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        0, // no global cap
		MaxIdleConnsPerHost: 2048,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}
	return &http.Client{Transport: tr}
}

// URL is the first registrar's base URL (the only one's, for one registrar).
func (t *Target) URL() string { return t.URLs[0] }

// Home is the base URL of the registrar that serves node k (round-robin).
func (t *Target) Home(k int) string { return t.URLs[k%len(t.URLs)] }

// Post sends body to base+path with s's member credential and wants one of
// the codes.
func (t *Target) Post(ctx context.Context, base, path string, s Spec, body []byte, codes ...int) error {
	req, err := http.NewRequestWithContext(ctx, "POST", base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+t.Creds[s.Member])
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.HC.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, c := range codes {
		if resp.StatusCode == c {
			return nil
		}
	}
	return fmt.Errorf("POST %s%s: HTTP %d: %s", base, path, resp.StatusCode, bytes.TrimSpace(b))
}

// Register registers s through base (a first registration or an update).
func (t *Target) Register(ctx context.Context, base string, s Spec) error {
	return t.Post(ctx, base, "/v1/nodes", s, s.Body, http.StatusCreated, http.StatusOK)
}

// renewBody is what an agent sends with each renewal.
var renewBody = []byte(`{"status":{"client":"Geth/v1.17.10-stable/linux-amd64/go1.26","head":1234567,"peers":25,"syncing":false}}`)

// Renew renews s's lease through base, with an agent's status report.
func (t *Target) Renew(ctx context.Context, base string, s Spec) error {
	return t.Post(ctx, base, "/v1/nodes/"+s.ID+"/renew", s, renewBody, http.StatusOK)
}

// Answer is one peer-set response as the client saw it.
type Answer struct {
	Status int
	ETag   string
	Index  uint64
	Bytes  int64
	Header time.Time // response headers received
	Done   time.Time // body fully read
}

// Peers GETs s's peer set from base. The body is copied to keep (nil:
// discarded) but not decoded, so the client's JSON decoding does not
// compete with the registrar for the CPU.
func (t *Target) Peers(ctx context.Context, base string, s Spec, query, inm string, keep io.Writer) (Answer, error) {
	u := base + "/v1/nodes/" + s.ID + "/peers"
	if query != "" {
		u += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return Answer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+t.Creds[s.Member])
	if inm != "" {
		req.Header.Set("If-None-Match", inm)
	}
	resp, err := t.HC.Do(req)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Status: resp.StatusCode, ETag: resp.Header.Get("ETag"), Header: time.Now()}
	a.Index, _ = strconv.ParseUint(resp.Header.Get("X-Consortium-Index"), 10, 64)
	if keep == nil {
		keep = io.Discard
	}
	a.Bytes, err = io.Copy(keep, resp.Body)
	resp.Body.Close()
	a.Done = time.Now()
	if err != nil {
		return a, err
	}
	if a.Status != http.StatusOK && a.Status != http.StatusNotModified {
		return a, fmt.Errorf("GET %s: HTTP %d", u, a.Status)
	}
	return a, nil
}

// Parked is the number of waiting blocking queries: CountParked's, or the
// sum of the watchers gauge on every registrar's /metrics.
func (t *Target) Parked(ctx context.Context) (int, error) {
	if t.CountParked != nil {
		return t.CountParked(ctx)
	}
	n := 0
	for _, base := range t.URLs {
		v, err := t.scrapeWatchers(ctx, base)
		if err != nil {
			return 0, err
		}
		n += v
	}
	return n, nil
}

func (t *Target) scrapeWatchers(ctx context.Context, base string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := t.HC.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "consortium_registrar_watchers "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(f), err
		}
	}
	return 0, fmt.Errorf("%s/metrics has no consortium_registrar_watchers", base)
}

// Get GETs base+path with member's credential ("" for none) and an optional
// If-None-Match, reading the body to the end without decoding it: the
// seed-compatible endpoints (/staticenodes, /enodes, ...) and any other read.
func (t *Target) Get(ctx context.Context, base, path, member, inm string) (Answer, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		return Answer{}, err
	}
	if member != "" {
		req.Header.Set("Authorization", "Bearer "+t.Creds[member])
	}
	if inm != "" {
		req.Header.Set("If-None-Match", inm)
	}
	resp, err := t.HC.Do(req)
	if err != nil {
		return Answer{}, err
	}
	a := Answer{Status: resp.StatusCode, ETag: resp.Header.Get("ETag"), Header: time.Now()}
	a.Bytes, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	a.Done = time.Now()
	if err != nil {
		return a, err
	}
	if a.Status != http.StatusOK && a.Status != http.StatusNotModified {
		return a, fmt.Errorf("GET %s: HTTP %d", base+path, a.Status)
	}
	return a, nil
}
