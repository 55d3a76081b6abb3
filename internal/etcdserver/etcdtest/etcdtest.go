// Package etcdtest runs real etcd clusters inside a test process, so that
// tests of the etcd store and of highly available registrars exercise etcd
// itself (quorum, watches, compaction) rather than a fake.
//
// Members listen on loopback ports picked once per member, keep their data
// in t.TempDir(), and are stopped by t.Cleanup even when the test fails. A
// stopped member restarts with its data on the same ports.
//
// etcd's own logs are discarded; set CONSORTIUM_ETCDTEST_LOG to debug, info,
// warn or error to see them on stderr.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/etcdserver"
)

// startTimeout bounds a member's start; a healthy loopback cluster is ready
// in about a second.
const startTimeout = 30 * time.Second

// Cluster is an in-process etcd cluster.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	members []*member
}

type member struct {
	cfg etcdserver.Config
	srv *etcdserver.Server // nil while stopped
}

// StartCluster starts an n-member cluster (1 or 3 are the useful sizes) and
// waits until it serves. It fails the test if the cluster does not start.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("etcdtest: cluster of %d members", n)
	}
	var err error
	// Ports are picked free, then bound by etcd a moment later: another
	// process may take one in between. That is rare, and a retry with
	// fresh ports is the cure.
	for range 3 {
		var c *Cluster
		if c, err = tryStart(t, n); err == nil {
			t.Cleanup(c.Close)
			return c
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatalf("etcdtest: starting a %d-member cluster: %v", n, err)
	return nil
}

func tryStart(t testing.TB, n int) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	dir := t.TempDir()
	c := &Cluster{t: t, members: make([]*member, n)}
	initial := make([]string, n)
	for i := range n {
		name := fmt.Sprintf("m%d", i)
		clientURL := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i])
		peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1])
		initial[i] = name + "=" + peerURL
		c.members[i] = &member{cfg: etcdserver.Config{
			Name:         name,
			DataDir:      filepath.Join(dir, name),
			ClientURLs:   []string{clientURL},
			PeerURLs:     []string{peerURL},
			ClusterToken: "etcdtest",
			StartTimeout: startTimeout,
			// Half etcd's timings: quicker elections, still ten heartbeats
			// per election timeout for a busy test machine.
			HeartbeatInterval: 50 * time.Millisecond,
			ElectionTimeout:   500 * time.Millisecond,
			Logger:            logger(),
		}}
	}
	for _, m := range c.members {
		m.cfg.InitialCluster = strings.Join(initial, ",")
	}
	// A new cluster's members become ready together, once a majority runs.
	if err := c.startMembers(all(n)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// startMembers starts the given members concurrently and waits for all.
func (c *Cluster) startMembers(ids []int) error {
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for k, i := range ids {
		c.mu.Lock()
		m := c.members[i]
		running := m.srv != nil
		cfg := m.cfg
		c.mu.Unlock()
		if running {
			continue
		}
		wg.Go(func() {
			srv, err := etcdserver.Start(context.Background(), cfg)
			if err != nil {
				errs[k] = fmt.Errorf("member %d: %w", i, err)
				return
			}
			c.mu.Lock()
			m.srv = srv
			c.mu.Unlock()
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Endpoints are the client URLs of every member, running or not, as a
// client's endpoint list.
func (c *Cluster) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	eps := make([]string, len(c.members))
	for i, m := range c.members {
		eps[i] = m.cfg.ClientURLs[0]
	}
	return eps
}

// Endpoint is member i's client URL.
func (c *Cluster) Endpoint(i int) string { return c.Endpoints()[i] }

// Stop stops the given members at once, as a crash would (no leadership
// hand-over), concurrently; stopping a stopped member does nothing.
func (c *Cluster) Stop(ids ...int) {
	c.t.Helper()
	var wg sync.WaitGroup
	for _, i := range ids {
		c.mu.Lock()
		m := c.members[i]
		srv := m.srv
		m.srv = nil
		c.mu.Unlock()
		if srv != nil {
			wg.Go(srv.Kill)
		}
	}
	wg.Wait()
}

// Start restarts the given stopped members with their data, on their ports,
// and waits until they serve. They are started together, so restarting two
// members of a three-member cluster whose third is down works; a member
// restarted alone needs a majority of the cluster running to become ready.
func (c *Cluster) Start(ids ...int) {
	c.t.Helper()
	c.mu.Lock()
	for _, i := range ids {
		c.members[i].cfg.ClusterState = "existing"
	}
	c.mu.Unlock()
	if err := c.startMembers(ids); err != nil {
		c.t.Fatalf("etcdtest: restarting members %v: %v", ids, err)
	}
}

// Running reports whether member i runs.
func (c *Cluster) Running(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[i].srv != nil
}

// Close stops every member. It is safe to call more than once; t.Cleanup
// calls it too.
func (c *Cluster) Close() {
	c.mu.Lock()
	var running []*etcdserver.Server
	for _, m := range c.members {
		if m.srv != nil {
			running = append(running, m.srv)
			m.srv = nil
		}
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, srv := range running {
		wg.Go(srv.Kill)
	}
	wg.Wait()
}

func all(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// freePorts picks n distinct free loopback ports, holding each open until
// all are picked so that none is handed out twice.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("picking a free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func logger() *slog.Logger {
	var level slog.Level
	switch os.Getenv("CONSORTIUM_ETCDTEST_LOG") {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}
