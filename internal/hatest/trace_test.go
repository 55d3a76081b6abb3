package hatest

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consortium/consortium/internal/registrarclient"
)

// How a test sees an agent's blocking query: which replica it was written
// to and when (httptrace), when its answer began and ended (the body, as
// the client reads it), and whether it named the node the test waits for.

// callInfo is what an agent knows of one blocking query of its peer set.
type callInfo struct {
	addr      string    // replica (host:port) the request was last written to
	wrote     time.Time // request written to addr
	firstByte time.Time // first byte of the answer
	bodyRead  time.Time // answer read to its end, before the client decodes it
	found     []string  // the fleet's targets that the answer's body holds
	returned  time.Time // WatchPeers returned (a 200 decoded)
	status    int       // 200, 304, or 0 for an error
	err       error
	peers     int // a 200's number of static peers, as decoded
}

// call is a callInfo being filled in by the request's trace, its body and
// the agent.
type call struct {
	mu sync.Mutex
	callInfo
	targets *atomic.Pointer[[]string] // fleet.targets
	gate    chan struct{}             // fleet.gate
	taken   bool                      // this call holds the gate
}

func (c *call) snapshot() callInfo {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.callInfo
}

// answered notes the time an answer's body was read to its end and which
// targets it names (timedBody looks for their public keys in the raw body:
// that costs nothing, unlike decoding it under -race).
func (c *call) answered(found []string) {
	c.mu.Lock()
	if c.bodyRead.IsZero() {
		c.bodyRead, c.found = time.Now(), found
	}
	c.mu.Unlock()
}

// take waits for the decoding gate, or for ctx.
func (c *call) take(ctx context.Context) error {
	select {
	case c.gate <- struct{}{}:
		c.mu.Lock()
		c.taken = true
		c.mu.Unlock()
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// release gives the gate back if this call took it.
func (c *call) release() {
	c.mu.Lock()
	taken := c.taken
	c.taken = false
	c.mu.Unlock()
	if taken {
		<-c.gate
	}
}

type callKey struct{}

// traced makes ctx record the request's connection and timings in c.
func traced(ctx context.Context, c *call) context.Context {
	var connAddr string
	ctx = context.WithValue(ctx, callKey{}, c)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotConn: func(i httptrace.GotConnInfo) { connAddr = i.Conn.RemoteAddr().String() },
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				c.mu.Lock()
				c.addr, c.wrote = connAddr, time.Now()
				c.mu.Unlock()
			}
		},
		GotFirstResponseByte: func() {
			c.mu.Lock()
			c.firstByte = time.Now()
			c.mu.Unlock()
		},
	})
}

// timedTransport wraps the body of each traced answer in a timedBody.
type timedTransport struct{ base http.RoundTripper }

func (tt timedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := tt.base.RoundTrip(req)
	if c, ok := req.Context().Value(callKey{}).(*call); ok && err == nil {
		resp.Body = &timedBody{ReadCloser: resp.Body, c: c, ctx: req.Context(), ok: resp.StatusCode == http.StatusOK}
	}
	return resp, err
}

// timedBody watches the answer go by for the fleet's targets; at its end
// it tells the call, and a 200 then waits for the decoding gate (see
// fleet.gate) before the client may go on to decode it. Should the
// request's context end meanwhile, the read fails instead, and nothing is
// decoded.
type timedBody struct {
	io.ReadCloser
	c     *call
	ctx   context.Context
	ok    bool   // a 200
	tail  []byte // the end of what was read so far, to find a target across two reads
	found []string
	done  bool
}

// keepTail is longer than a target (a public key, 128 hex characters).
const keepTail = 160

func (b *timedBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.ReadCloser.Read(p)
	if n > 0 && b.ok {
		b.scan(p[:n])
	}
	if err != io.EOF {
		return n, err
	}
	b.done = true
	b.c.answered(b.found)
	if b.ok && b.c.gate != nil {
		if err := b.c.take(b.ctx); err != nil {
			return n, err
		}
	}
	return n, io.EOF
}

// scan looks for the targets in the tail of the last read and this one.
func (b *timedBody) scan(chunk []byte) {
	ts := b.c.targets.Load()
	if ts == nil {
		return
	}
	win := append(b.tail, chunk...)
	for _, tk := range *ts {
		if !slices.Contains(b.found, tk) && bytes.Contains(win, []byte(tk)) {
			b.found = append(b.found, tk)
		}
	}
	b.tail = append(b.tail[:0], win[max(0, len(win)-keepTail):]...)
}

// agentHTTPClient is registrarclient's default client (dial timeout,
// keep-alive probes) with timedTransport around it.
func agentHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	d := &net.Dialer{Timeout: registrarclient.DialTimeout,
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3}}
	tr.DialContext = d.DialContext
	return &http.Client{Transport: timedTransport{tr}}
}
