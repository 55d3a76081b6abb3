package hatest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/consortium/consortium/internal/auth"
	"github.com/consortium/consortium/internal/registry"

	"github.com/consortium/consortium/internal/proctest"
)

// etcdCluster is an etcd cluster of `consortium etcd` processes on
// loopback, so that a member can be SIGKILLed as a machine would die.
type etcdCluster struct {
	t       testing.TB
	ps      *proctest.Procs
	members []*etcdMember
}

type etcdMember struct {
	name, client string // client is host:port
	args         []string
	p            *proctest.Proc // the current run; nil before the first start
}

// startEtcd starts an n-member cluster and waits until every member serves
// linearizable reads.
func startEtcd(t testing.TB, ps *proctest.Procs, n int) *etcdCluster {
	t.Helper()
	ports := freePorts(t, 2*n)
	c := &etcdCluster{t: t, ps: ps}
	var initial []string
	for i := range n {
		initial = append(initial, fmt.Sprintf("e%d=http://127.0.0.1:%d", i, ports[2*i+1]))
	}
	dir := fastDir(t)
	for i := range n {
		m := &etcdMember{name: fmt.Sprintf("e%d", i), client: fmt.Sprintf("127.0.0.1:%d", ports[2*i])}
		m.args = []string{"etcd", "--name", m.name, "--data", filepath.Join(dir, m.name),
			"--listen-client", "http://" + m.client,
			"--listen-peer", fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
			"--initial-cluster", strings.Join(initial, ","),
			"--initial-cluster-token", fmt.Sprintf("hatest-%d", ports[0]),
			"--log-level", "warn"}
		c.members = append(c.members, m)
	}
	c.start(all(n)...)
	return c
}

// storeURL is the registrars' --store.
func (c *etcdCluster) storeURL() string {
	var eps []string
	for _, m := range c.members {
		eps = append(eps, m.client)
	}
	return "etcd://" + strings.Join(eps, ",")
}

// kill SIGKILLs members.
func (c *etcdCluster) kill(ids ...int) {
	for _, i := range ids {
		c.members[i].p.Kill()
	}
}

// start starts (or restarts, with their data) members, together, and waits
// until each answers a linearizable read: a majority of the cluster must
// therefore run once they are up.
func (c *etcdCluster) start(ids ...int) {
	c.t.Helper()
	for _, i := range ids {
		m := c.members[i]
		if m.p != nil && !m.p.Exited() {
			c.t.Fatalf("etcd member %s already runs", m.name)
		}
		m.p = c.ps.Start(m.name, bin, m.args...)
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, i := range ids {
		for {
			err := c.healthy(i)
			if err == nil {
				break
			}
			if c.members[i].p.Exited() {
				c.t.Fatalf("etcd member %s exited at start-up", c.members[i].name)
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("etcd member %s not healthy after 60 s: %v", c.members[i].name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// client is an etcd client of member i alone.
func (c *etcdCluster) client(i int) (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   []string{"http://" + c.members[i].client},
		DialTimeout: time.Second,
		Logger:      zap.NewNop(),
	})
}

// healthy reports whether member i answers a linearizable read (it has a
// leader and the cluster a quorum).
func (c *etcdCluster) healthy(i int) error {
	cli, err := c.client(i)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = cli.Get(ctx, "hatest-health", clientv3.WithCountOnly())
	return err
}

// leader is the index of the member that leads the cluster now.
func (c *etcdCluster) leader() (int, error) {
	for i, m := range c.members {
		if m.p.Exited() {
			continue
		}
		cli, err := c.client(i)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := cli.Status(ctx, "http://"+m.client)
		cancel()
		cli.Close()
		if err == nil && st.Leader != 0 && st.Leader == st.Header.MemberId {
			return i, nil
		}
	}
	return -1, fmt.Errorf("no etcd member says it leads")
}

// fastDir is a directory for etcd's data: in /dev/shm when there is one,
// so that fsync costs nothing on a shared test machine's disk. A SIGKILLed
// member still finds its data there. Registered before the members start, it
// is removed after they are killed.
func fastDir(t testing.TB) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if dir, err := os.MkdirTemp("/dev/shm", "hatest-etcd-"); err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

func all(n int) []int {
	ids := make([]int, n)
	for i := range ids {
		ids[i] = i
	}
	return ids
}

// seed is the consortium a test starts with: an administrator and members,
// whose credentials the test holds and whose hashes seed.json carries.
type seed struct {
	path    string
	admin   string            // credential
	members map[string]string // name -> credential
}

func writeSeed(t testing.TB, names ...string) seed {
	t.Helper()
	admin, err := auth.New(auth.Admin)
	if err != nil {
		t.Fatal(err)
	}
	s := registry.Seed{AdminHash: auth.Hash(admin.Secret)}
	out := seed{path: filepath.Join(t.TempDir(), "seed.json"), admin: admin.String(), members: map[string]string{}}
	for _, n := range names {
		c, err := auth.New(n)
		if err != nil {
			t.Fatal(err)
		}
		s.Members = append(s.Members, registry.SeedMember{Name: n, Hash: auth.Hash(c.Secret)})
		out.members[n] = c.String()
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out.path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// replica is one `consortium registrar` process.
type replica struct {
	name string
	addr string // 127.0.0.1:port
	args []string
	p    *proctest.Proc
}

func (r *replica) url() string { return "http://" + r.addr }

// ttl is the lease of every registrar in these tests: short, so that two
// TTLs pass quickly, long enough for a 2-core machine under load.
const ttl = 6 * time.Second

// startReplicas starts n registrars on one store and waits until each is
// ready. extra flags are added to each.
func startReplicas(t testing.TB, ps *proctest.Procs, n int, storeURL string, sd seed, extra ...string) []*replica {
	t.Helper()
	ports := freePorts(t, n)
	var rs []*replica
	for i := range n {
		r := &replica{name: fmt.Sprintf("registrar%d", i), addr: fmt.Sprintf("127.0.0.1:%d", ports[i])}
		r.args = append([]string{"registrar", "--listen", r.addr, "--data", t.TempDir(),
			"--store", storeURL, "--seed", sd.path, "--ttl", ttl.String()}, extra...)
		rs = append(rs, r)
	}
	for _, r := range rs {
		r.start(t, ps)
	}
	for _, r := range rs {
		r.waitReady(t)
	}
	return rs
}

func (r *replica) start(t testing.TB, ps *proctest.Procs) {
	t.Helper()
	if r.p != nil && !r.p.Exited() {
		t.Fatalf("%s already runs", r.name)
	}
	r.p = ps.Start(r.name, bin, r.args...)
}

// waitReady waits until /readyz answers 200.
func (r *replica) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		code, _, err := get(r.url()+"/readyz", "")
		if err == nil && code == http.StatusOK {
			return
		}
		if r.p.Exited() {
			t.Fatalf("%s exited at start-up", r.name)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60 s (last: %d %v)", r.name, code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
