package registry

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/store/sqlite"
	"github.com/consortium/consortium/internal/testutil"
	"github.com/ethereum/go-ethereum/crypto"
)

var update = flag.Bool("update", false, "rewrite testdata/policy/*.golden from the registry's answers")

// The peer policy and the visibility rule as golden files (the way
// Headscale tests its ACL policy): each testdata/policy/*.txt is a small
// topology, written as the steps that build it; the test plays it on a
// registry over SQLite and renders every node's peer answer and what the
// administrator and each member see of the nodes and the events. The
// rendering must equal the .golden beside it. The goldens are the spec:
// review a change to one as a change of the policy.
//
// The same steps are played at once on two replicas over a shared store,
// through the first (local writes); both replicas, the second applying
// the first's writes as they are replicated, must render the same.
//
// Directives (one a line; "#" starts a comment, the leading comment lines
// are copied into the golden):
//
//	member NAME                    add a member
//	node MEMBER/NODE ROLE [cmt]    register a new node (cmt: its records carry a CometBFT address)
//	renew NODE [peers=N1,N2]       renew its lease, reporting those peers
//	resign NODE [role=ROLE] [move] register seq+1, maybe in another role, maybe at new addresses
//	register NODE                  register its current record again
//	remove NODE                    its member removes it
//	adminremove NODE               the administrator removes it
//	free NODE                      the administrator frees its ID
//	revoke MEMBER                  the administrator revokes a member
//	advance DURATION               move the clock (leases are 30 s), then expire what ran out
//	! DIRECTIVE                    the directive must be refused; the error goes into the golden
func TestPolicyGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "policy", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no topologies in testdata/policy (%v)", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".txt")
		t.Run(name, func(t *testing.T) {
			got := playPolicy(t, f)
			golden := strings.TrimSuffix(f, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the registry's answers:\n%s", golden, lineDiff(string(want), got))
			}
		})
	}
}

// world is one topology played on a SQLite registry and on two replicas
// of a shared store, on one clock.
type world struct {
	t       *testing.T
	ctx     context.Context
	clock   *testutil.Clock
	c       *cluster
	regs    []*Registry // SQLite, replica A, replica B
	writers []*Registry // the ones a directive writes through: SQLite and A
	members []string
	nodes   map[string]*gnode
	order   []string // node names, as declared
	ips     int
	refused []string
}

// gnode is a node of a topology: its key (from its name, so the goldens
// are stable) and the records it last signed.
type gnode struct {
	name, member, role string
	key                *ecdsa.PrivateKey
	id                 string
	seq                uint64
	ip, pub            string
	cmt                bool
}

func newWorld(t *testing.T) *world {
	c := newCluster(t, 2, false)
	st, err := sqlite.Open(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r, err := Open(context.Background(), st, Config{
		TTL: sharedTTL, FlushInterval: time.Hour, Now: c.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.EnsureAdmin(context.Background()); err != nil {
		t.Fatal(err)
	}
	return &world{
		t: t, ctx: context.Background(), clock: c.clock, c: c,
		regs: []*Registry{r, c.regs[0], c.regs[1]}, writers: []*Registry{r, c.regs[0]},
		nodes: map[string]*gnode{},
	}
}

func playPolicy(t *testing.T, file string) string {
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := newWorld(t)
	var head strings.Builder
	sc := bufio.NewScanner(f)
	inHead := true
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		if inHead && strings.HasPrefix(line, "#") {
			head.WriteString(line + "\n")
			continue
		}
		inHead = false
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		w.step(fmt.Sprintf("%s:%d", file, ln), fields)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for i, r := range w.regs {
		out = append(out, head.String()+w.render(r))
		if i > 0 && out[i] != out[0] {
			t.Errorf("replica %d over the shared store answers otherwise than the registry over SQLite:\n%s", i, lineDiff(out[0], out[i]))
		}
	}
	return out[0]
}

// step runs one directive on the writers, then lets the replicas settle:
// renewals written, the replication applied, lapsed leases announced.
func (w *world) step(at string, f []string) {
	w.t.Helper()
	refuse := f[0] == "!"
	if refuse {
		f = f[1:]
	}
	for i, r := range w.writers {
		err := w.do(at, r, f, i == len(w.writers)-1)
		switch {
		case refuse && err == nil:
			w.t.Fatalf("%s: %v was accepted, want it refused", at, f)
		case !refuse && err != nil:
			w.t.Fatalf("%s: %v: %v", at, f, err)
		case refuse && i == 0:
			w.refused = append(w.refused, fmt.Sprintf("%s: %v", strings.Join(f, " "), err))
		}
	}
	for _, r := range w.regs {
		r.flush(w.ctx)
	}
	w.c.sync()
	for _, r := range w.regs {
		r.Reap()
	}
}

// node is the node a directive names.
func (w *world) node(at, name string) *gnode {
	n := w.nodes[name]
	if n == nil {
		w.t.Fatalf("%s: no node %q", at, name)
	}
	return n
}

// do runs directive f on r. last is set for the last writer: a directive
// that changes a node's records changes them after it.
func (w *world) do(at string, r *Registry, f []string, last bool) error {
	need := func(n int) {
		if len(f) < n {
			w.t.Fatalf("%s: %v: too few arguments", at, f)
		}
	}
	need(2)
	switch f[0] {
	case "member":
		if last {
			w.members = append(w.members, f[1])
		}
		_, err := r.AddMember(w.ctx, admin, f[1])
		return err
	case "revoke":
		_, err := r.RevokeMember(w.ctx, admin, f[1])
		return err
	case "advance":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			w.t.Fatalf("%s: %v", at, err)
		}
		if last {
			w.clock.Advance(d)
		}
		return nil
	case "node":
		need(3)
		if w.nodes[f[1]] == nil {
			w.newNode(at, f[1], f[2], len(f) > 3 && f[3] == "cmt")
		}
		return w.register(r, w.nodes[f[1]])
	}
	n := w.node(at, f[1])
	switch f[0] {
	case "renew":
		return w.renew(at, r, n, f[2:])
	case "resign":
		return w.resign(r, n, f[2:], last)
	case "register":
		return w.register(r, n)
	case "remove":
		return r.Remove(w.ctx, Principal{Name: n.member}, n.id)
	case "adminremove":
		return r.Remove(w.ctx, admin, n.id)
	case "free":
		return r.Free(w.ctx, admin, n.id)
	}
	w.t.Fatalf("%s: unknown directive %q", at, f[0])
	return nil
}

func (w *world) newNode(at, name, role string, cmt bool) {
	member, _, ok := strings.Cut(name, "/")
	if !ok {
		w.t.Fatalf("%s: a node is named MEMBER/NODE, not %q", at, name)
	}
	sum := sha256.Sum256([]byte("policy golden " + name))
	key, err := crypto.ToECDSA(sum[:])
	if err != nil {
		w.t.Fatal(err)
	}
	n := &gnode{name: name, member: member, role: role, key: key, id: testutil.ID(key), seq: 1, cmt: cmt}
	w.address(n)
	w.nodes[name], w.order = n, append(w.order, name)
}

// address gives n fresh addresses: private ones in 10.0.0.0/8, public
// ones in 203.0.113.0/24.
func (w *world) address(n *gnode) {
	w.ips++
	n.ip = fmt.Sprintf("10.0.0.%d", w.ips)
	n.pub = ""
	if n.role == "public" {
		n.pub = fmt.Sprintf("203.0.113.%d", w.ips)
	}
}

// records are n's current records.
func (w *world) records(n *gnode) Registration {
	rg := Registration{Role: n.role, ENR: n.enr(w.t, n.ip)}
	if n.pub != "" {
		rg.PublicENR = n.enr(w.t, n.pub)
	}
	return rg
}

func (n *gnode) enr(t *testing.T, ip string) string {
	if !n.cmt {
		return testutil.ENR(t, n.key, n.seq, ip, 30303, 30303)
	}
	return cmtENR(t, n.key, n.seq, ip, n.key.D.Bytes()[0], 26656)
}

func (w *world) register(r *Registry, n *gnode) error {
	_, _, err := r.Register(w.ctx, Principal{Name: n.member}, w.records(n))
	return err
}

func (w *world) renew(at string, r *Registry, n *gnode, args []string) error {
	var st *Status
	for _, a := range args {
		list, ok := strings.CutPrefix(a, "peers=")
		if !ok {
			w.t.Fatalf("%s: renew takes peers=N1,N2, not %q", at, a)
		}
		st = &Status{Client: "Geth/v1.17.0"}
		for _, p := range strings.Split(list, ",") {
			st.PeerIDs = append(st.PeerIDs, w.node(at, p).id)
		}
		st.Peers = len(st.PeerIDs)
	}
	_, err := r.Renew(w.ctx, Principal{Name: n.member}, n.id, st)
	return err
}

// resign registers n with seq+1, in another role (role=R) or at new
// addresses (move) if asked. The records change once every writer has
// been sent the same ones.
func (w *world) resign(r *Registry, n *gnode, args []string, last bool) error {
	m := *n
	m.seq++
	for _, a := range args {
		if role, ok := strings.CutPrefix(a, "role="); ok {
			m.role = role
			if m.role != "public" {
				m.pub = ""
			} else if m.pub == "" {
				m.pub = strings.Replace(m.ip, "10.0.0.", "203.0.113.", 1)
			}
		}
	}
	if len(args) > 0 && args[len(args)-1] == "move" {
		w.address(&m)
		if !last {
			w.ips-- // the next writer moves it to the same addresses
		}
	}
	err := w.register(r, &m)
	if last && err == nil {
		*n = m
	}
	return err
}
