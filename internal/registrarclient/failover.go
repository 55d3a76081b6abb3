package registrarclient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync/atomic"
)

// kind says when a request that failed at one URL may be sent to the next.
type kind uint8

const (
	// repeatable requests (reads, DELETE, registering a signed record,
	// renewing a lease) mean the same sent twice, so any failover-class
	// failure sends them to the next URL.
	repeatable kind = iota
	// once requests (creating a member) go to the next URL only when they
	// never left (the connection failed): sent twice they could act twice.
	once
	// blocking requests (a watch with a wait) go to the next URL only when
	// they never left. One that failed after it was sent may have waited
	// most of the caller's deadline: the client moves on and returns, and
	// the caller re-issues it with its own timing.
	blocking
)

// maxBody bounds an answer read into memory.
const maxBody = 64 << 20

type request struct {
	kind   kind
	method string
	path   string
	query  url.Values
	body   []byte // nil: none
	header http.Header
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// failover reports whether an answer means "this replica cannot serve now,
// another may": the gateway statuses a proxy gives for a dead backend, and
// the 503 of a registrar whose store is unavailable. Every other status is
// an answer, which another replica would give too.
func failover(status int) bool {
	return status == http.StatusBadGateway || status == http.StatusServiceUnavailable || status == http.StatusGatewayTimeout
}

// send sends r to the current URL and, on a failover-class failure, moves
// the current URL on and tries the others once each, as r's kind allows,
// all within ctx. The current URL changes only when it fails, so the client
// stays on the replica that last answered and never flaps while it answers.
func (c *Client) send(ctx context.Context, r request) (*response, error) {
	n := len(c.bases)
	start := int(c.cur.Load())
	var tried []Attempt
	for k := range n {
		i := (start + k) % n
		done := ctx.Err() != nil
		actx := context.WithValue(ctx, lookupWaitKey{}, lookupWait(ctx, n-k))
		resp, sent, err := c.attempt(actx, c.bases[i], &r)
		switch {
		case err == nil && !failover(resp.status):
			return resp, nil
		case err == nil:
			err = resp.apiError()
		case ctx.Err() != nil:
			// The caller's cancellation is nobody's fault; its deadline
			// running out while this URL held the request is this URL's.
			if !done && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				c.moveOn(i, err)
			}
			tried = append(tried, Attempt{URL: c.bases[i], Err: err})
			return nil, failed(tried)
		case !errors.Is(err, ErrUnreachable):
			return nil, err // the request could not be built: no URL is to blame
		}
		c.moveOn(i, err)
		tried = append(tried, Attempt{URL: c.bases[i], Err: err})
		if sent && r.kind != repeatable {
			break
		}
	}
	return nil, failed(tried)
}

// failed is the error for the attempts made: the only one's error as it is
// (so a single URL behaves as it always did), else a FailoverError.
func failed(tried []Attempt) error {
	if len(tried) == 1 {
		return tried[0].Err
	}
	return &FailoverError{Tried: tried}
}

// moveOn makes the URL after i current if i still is. Several requests
// failing at once on the same URL thus move the client one step, not one
// step each.
func (c *Client) moveOn(i int, err error) {
	n := len(c.bases)
	if n < 2 {
		return
	}
	next := (i + 1) % n
	if c.cur.CompareAndSwap(uint32(i), uint32(next)) {
		c.log.Warn("registrar URL failed; moving to the next", "failed", c.bases[i], "next", c.bases[next], "err", reason(err))
	}
}

// attempt sends r to one base URL and reads the whole answer. sent reports
// whether the request may have reached the server: false only when no
// request headers were written and the connection was never made.
func (c *Client) attempt(ctx context.Context, base string, r *request) (resp *response, sent bool, err error) {
	u := base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	// The transport sends a GET again by itself when a kept-alive
	// connection breaks, so the last error alone (a refused dial) can hide
	// that the request went out on the first connection. Watching the
	// writes tells.
	var wrote atomic.Bool
	tctx := httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }})
	req, err := http.NewRequestWithContext(tctx, r.method, u, body)
	if err != nil {
		return nil, false, err
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cred := c.cred.get(); cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	for k, v := range r.header {
		req.Header[k] = v
	}
	hr, err := c.hc.Do(req)
	if err != nil {
		sent = wrote.Load() || !neverSent(err)
		if ctx.Err() != nil {
			return nil, sent, ctx.Err()
		}
		return nil, sent, &unreachable{cause: err}
	}
	defer hr.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hr.Body, maxBody))
	if err != nil {
		if ctx.Err() != nil {
			return nil, true, ctx.Err()
		}
		return nil, true, &unreachable{cause: err}
	}
	return &response{status: hr.StatusCode, header: hr.Header, body: b}, true, nil
}

// neverSent reports whether a transport error happened before any byte of
// the request could reach the server: resolving or dialing failed.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
