package dnstree

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/consortium/consortium/internal/ctxtime"
	"github.com/ethereum/go-ethereum/p2p/dnsdisc"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// Config tunes Trees. Zero values mean the defaults given per field.
type Config struct {
	// Domain is the consortium's DNS domain; member M's zone is
	// M.nodes.<Domain>. Required.
	Domain string
	// Key signs every tree (LoadOrCreateKey). Required.
	Key *ecdsa.PrivateKey
	// RetryInterval is the wait after a failed read of the source before
	// the next one. Default 1 s.
	RetryInterval time.Duration
	// MinInterval is the least time between two updates in Run: changes
	// that come faster (a storm of registrations) are merged into one.
	// Clients re-read a root every 30 minutes; 100 ms more costs them
	// nothing and bounds the registrar's work. Default 100 ms.
	MinInterval time.Duration
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	c.Domain = strings.Trim(strings.ToLower(c.Domain), ".")
	if c.Domain == "" {
		return c, fmt.Errorf("%w: no domain", ErrConfig)
	}
	if !validDomain(c.Domain) {
		return c, fmt.Errorf("%w: %q is not a domain name of letters, digits and hyphens", ErrConfig, c.Domain)
	}
	if c.Key == nil {
		return c, fmt.Errorf("%w: no tree key", ErrConfig)
	}
	if c.RetryInterval <= 0 {
		c.RetryInterval = time.Second
	}
	if c.MinInterval <= 0 {
		c.MinInterval = 100 * time.Millisecond
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

var labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// validDomain: host-name labels only, and short enough that the longest
// name served (a 26-character hash, a 32-character member, "nodes") stays
// within DNS's 253.
func validDomain(d string) bool {
	if len(d) > 180 {
		return false
	}
	for _, l := range strings.Split(d, ".") {
		if !labelRE.MatchString(l) {
			return false
		}
	}
	return true
}

// Trees keeps one signed tree per member, following a Source. Queries read
// the current snapshot without locks; only Update builds a new one.
type Trees struct {
	cfg    Config
	src    Source
	suffix string // ".nodes.<domain>." lower case: what every zone's apex ends with

	updateMu sync.Mutex // serialises Update
	cur      atomic.Pointer[snapshot]
	signed   atomic.Uint64 // trees signed since start, for tests and metrics
}

// snapshot is every zone at one moment. Read-only once stored.
type snapshot struct {
	zones map[string]*zone // by member
}

// zone is one member's signed tree and its TXT records.
type zone struct {
	member  string
	apex    string // "<member>.nodes.<domain>", lower case, no final dot
	url     string
	seq     uint64
	digest  [sha256.Size]byte // of the records the tree holds, in any order
	tree    *dnsdisc.Tree
	records map[string]string // the tree's TXT records by full name, as dnsdisc renders them
	// txt maps a name relative to the apex ("" for the apex itself, else
	// the entry's hash label) in lower case to its TXT text.
	txt map[string]string
}

// New returns Trees over src; nothing is built until Update or Run.
func New(src Source, cfg Config) (*Trees, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	t := &Trees{cfg: cfg, src: src, suffix: ".nodes." + cfg.Domain + "."}
	t.cur.Store(&snapshot{zones: map[string]*zone{}})
	return t, nil
}

// Zone is member's zone name.
func (t *Trees) Zone(member string) string { return Zone(member, t.cfg.Domain) }

// URL is the enrtree:// URL of member's tree, whether it exists yet or not:
// what `consortium init` and the dashboard print.
func (t *Trees) URL(member string) string { return URL(&t.cfg.Key.PublicKey, t.Zone(member)) }

// Signed is the number of trees signed since start.
func (t *Trees) Signed() uint64 { return t.signed.Load() }

// Run keeps the trees current until ctx ends: an Update now and after every
// change of the source, at most one per MinInterval. A failed Update keeps
// the trees it had and is retried after RetryInterval.
func (t *Trees) Run(ctx context.Context) {
	for {
		changed := t.src.Changed() // before reading, so no change is missed
		last := time.Now()
		if err := t.Update(); err != nil {
			t.cfg.Logger.Warn("dns tree update failed; keeping the previous trees", "err", err)
			if !ctxtime.Sleep(ctx, t.cfg.RetryInterval) {
				return
			}
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
		if !ctxtime.Sleep(ctx, t.cfg.MinInterval-time.Since(last)) {
			return
		}
	}
}

// Update reads every member's answer from the source and re-signs the tree
// of each member whose answer changed (and only those), with a sequence
// number above the previous one. A member whose answer cannot be read keeps
// its previous tree; its error is returned after the others are updated.
func (t *Trees) Update() error {
	t.updateMu.Lock()
	defer t.updateMu.Unlock()
	members, err := t.src.Members()
	if err != nil {
		return err
	}
	old := t.cur.Load()
	next := &snapshot{zones: make(map[string]*zone, len(members))}
	var firstErr error
	for _, m := range members {
		prev := old.zones[m]
		nodes, version, err := t.src.MemberRecords(m)
		if err == nil {
			var z *zone
			if z, err = t.build(prev, m, nodes, version); err == nil {
				next.zones[m] = z
				continue
			}
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("member %s: %w", m, err)
		}
		if prev != nil {
			next.zones[m] = prev
		}
	}
	t.cur.Store(next)
	return firstErr
}

// build returns prev when nodes are the records it already holds, else a
// new tree signed with seq = max(prev.seq+1, version): the directory's
// index keeps growing across restarts, so a restarted registrar never goes
// back to a sequence number a client has seen.
func (t *Trees) build(prev *zone, member string, nodes []*enode.Node, version uint64) (*zone, error) {
	// A record's signature covers its content, so (ID, signature) pairs
	// tell two answers apart without encoding every record again.
	keys := make([]string, len(nodes))
	for i, n := range nodes {
		id := n.ID()
		keys[i] = string(id[:]) + string(n.Record().Signature())
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte{byte(len(k))})
		h.Write([]byte(k))
	}
	var digest [sha256.Size]byte
	h.Sum(digest[:0])
	if prev != nil && prev.digest == digest {
		return prev, nil
	}
	seq := max(version, 1)
	if prev != nil && seq <= prev.seq {
		seq = prev.seq + 1
	}
	tree, err := dnsdisc.MakeTree(uint(seq), nodes, nil)
	if err != nil {
		// One record MakeTree refuses (unsigned, a port that does not
		// decode) must not take the member's whole tree down.
		tree, err = t.makeSkipping(member, seq, nodes)
		if err != nil {
			return nil, err
		}
	}
	apex := t.Zone(member)
	url, err := tree.Sign(t.cfg.Key, apex)
	if err != nil {
		return nil, err
	}
	t.signed.Add(1)
	z := &zone{member: member, apex: apex, url: url, seq: seq, digest: digest, tree: tree, records: tree.ToTXT(apex), txt: map[string]string{}}
	for name, text := range z.records {
		rel := strings.TrimSuffix(strings.TrimSuffix(name, apex), ".")
		z.txt[strings.ToLower(rel)] = text
	}
	return z, nil
}

func (t *Trees) makeSkipping(member string, seq uint64, nodes []*enode.Node) (*dnsdisc.Tree, error) {
	ok := make([]*enode.Node, 0, len(nodes))
	for _, n := range nodes {
		if _, err := dnsdisc.MakeTree(1, []*enode.Node{n}, nil); err != nil {
			t.cfg.Logger.Warn("node record left out of the DNS tree", "member", member, "node", n.ID(), "err", err)
			continue
		}
		ok = append(ok, n)
	}
	return dnsdisc.MakeTree(uint(seq), ok, nil)
}

// TreeView is a member's tree as GET /v1/members/{name}/tree returns it:
// every TXT record of the zone, by full name, as DNS serves them.
type TreeView struct {
	Member  string            `json:"member"`
	Zone    string            `json:"zone"`
	URL     string            `json:"url"`
	Seq     uint64            `json:"seq"`
	Nodes   int               `json:"nodes"`
	Records map[string]string `json:"records"`
}

// Tree returns member's current tree, or ErrNoTree. The caller decides who
// may read it (the member itself or the administrator): the tree holds the
// member's private endpoints.
func (t *Trees) Tree(member string) (*TreeView, error) {
	z := t.cur.Load().zones[member]
	if z == nil {
		return nil, ErrNoTree
	}
	return &TreeView{Member: z.member, Zone: z.apex, URL: z.url, Seq: z.seq, Nodes: len(z.tree.Nodes()), Records: maps.Clone(z.records)}, nil
}
