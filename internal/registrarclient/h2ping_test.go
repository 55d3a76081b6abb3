package registrarclient

import (
	"context"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// stallProxy relays TCP to a server until stall is called; from then on it
// reads nothing and writes nothing but keeps both connections open, as a
// network cut does to a connection that outlives it (the sender's kernel
// still accepts bytes into its buffers, so TCP keep-alive sees no problem).
type stallProxy struct {
	ln      net.Listener
	mu      sync.Mutex
	stalled chan struct{} // closed by stall
	conns   []net.Conn
}

func newStallProxy(t *testing.T, to string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, stalled: make(chan struct{})}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", to)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go p.pipe(c, u)
			go p.pipe(u, c)
		}
	}()
	return p
}

func (p *stallProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		select {
		case <-p.stalled:
			return // stop relaying; the connections stay open
		default:
		}
		n, err := src.Read(buf)
		select {
		case <-p.stalled:
			return
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF or a closed connection
		}
	}
}

func (p *stallProxy) stall() { close(p.stalled) }

// TestStalledHTTP2ConnectionIsDropped: over https the client speaks HTTP/2,
// so every request to a replica rides one connection. When that connection
// stalls (a network cut), a call without a deadline must fail within
// seconds (HTTP/2 pings), not hang until TCP gives up minutes later.
func TestStalledHTTP2ConnectionIsDropped(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"status": "ready"})
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	p := newStallProxy(t, srv.Listener.Addr().String())
	c, err := New(Config{URL: "https://" + p.ln.Addr().String(), CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://"+p.ln.Addr().String()+"/readyz", nil)
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	proto := resp.Proto
	resp.Body.Close()
	if proto != "HTTP/2.0" {
		t.Fatalf("the client spoke %s to an https registrar, want HTTP/2.0 (the case this test is about)", proto)
	}

	p.stall()
	// A generous bound: pings after 5 s of silence, 3 s to answer.
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	start := time.Now()
	err = c.Ready(ctx)
	took := time.Since(start)
	if err == nil {
		t.Fatal("a call over a stalled connection succeeded")
	}
	if took > 30*time.Second {
		t.Fatalf("a call over a stalled connection took %v to fail (%v), want the HTTP/2 ping's ~8 s", took, err)
	}
	t.Logf("a call over a stalled HTTP/2 connection failed after %v: %v", took.Round(100*time.Millisecond), err)
}
