package devnet

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/consortium/consortium/internal/agent"
	"github.com/consortium/consortium/internal/consortiuminit"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/p2p/enode"
)

// plainName is the name of a member's plain-geth node.
const plainName = "dns-1"

// plainJoinReport is how long a plain-geth node may take to reach its
// member's nodes before the devnet says where it stands.
const plainJoinReport = 2 * time.Minute

// A plain-geth node is what a member runs when it runs a client without an
// agent: geth with --discovery.dns and nothing else that names a peer. The
// devnet registers the node's record for it (the others' agents drop a
// peer the registrar does not know, and renewing a record is all an agent
// would do for it here) but never tells its geth anything: every peer it
// has, it found in its member's tree through the system resolver.
//
// The record is registered a moment before geth starts. The agents of the
// member's other nodes then add it as a static peer and dial it at once,
// while it is not listening yet; geth does not redial a node for 35 s after
// a dial (p2p/dial.go), so the connections that come up are mostly the
// ones the plain node dials from the tree; a geth that takes longer than
// that to start (a loaded machine) meets their second dial, and its join
// line says which side dialled each.

// startPlainNodes starts one plain-geth node per member, beside the
// devnet's own, and reports each one's join. It runs in the background:
// the devnet's start does not wait for it.
func (d *Devnet) startPlainNodes(ctx context.Context, members []string) {
	if d.dns == nil {
		return
	}
	if d.dns.resolv == "" {
		d.out.printf("dns        node trees served on %s (dig @%s -p %d TXT %s); no plain-geth node: %s (run the devnet as root for one per member)",
			d.dns.addr, strings.Split(d.dns.addr, ":")[0], d.dns.port(), d.dns.trees.Zone(members[0]), d.dns.why)
		return
	}
	d.out.printf("dns        node trees served on %s; once the mesh is up, one plain-geth node per member with only --discovery.dns (%s for %s), /etc/resolv.conf naming the registrar",
		d.dns.addr, d.dns.url(members[0]), members[0])
	for k, m := range members {
		d.plainWG.Go(func() {
			// After the mesh (a minute at most): a dozen geth starting at
			// once on a small machine need no four more beside them.
			for i := 0; i < 240 && d.Stats().Mesh.IsZero(); i++ {
				select {
				case <-ctx.Done():
					return
				case <-time.After(pollEvery):
				}
			}
			n, err := d.startPlain(ctx, m, k)
			if err != nil {
				if ctx.Err() == nil {
					d.out.printf("dns        %s/%s did not start: %v", m, plainName, err)
				}
				return
			}
			d.watchPlain(ctx, n, time.Now())
		})
	}
}

// startPlain starts member's plain-geth node; k (the member's place in the
// consortium) fixes its ports, counted down from the top of each range so
// they never meet the ports of nodes that join later.
func (d *Devnet) startPlain(ctx context.Context, member string, k int) (*gethNode, error) {
	rc, err := d.client(member)
	if err != nil {
		return nil, err
	}
	rel := filepath.ToSlash(filepath.Join("data", member, plainName, "nodekey"))
	if err := os.MkdirAll(filepath.Dir(d.env.path(rel)), 0o700); err != nil {
		return nil, err
	}
	key, _, err := agent.LoadOrCreateKey(d.env.path(rel))
	if err != nil {
		return nil, err
	}
	pub := crypto.FromECDSAPub(&key.PublicKey)[1:]
	spec := nodeSpec{Member: member, Index: portStride - 1 - k, Node: consortiuminit.Node{
		Name: plainName, Role: consortiuminit.RoleTx, ID: enode.PubkeyToIDV4(&key.PublicKey).String(),
		Pubkey: fmt.Sprintf("%x", pub), Nodekey: rel,
	}}
	if err := checkPorts(d.env, []nodeSpec{spec}); err != nil {
		return nil, err
	}
	n := newGethNode(d.env, spec, rc)
	n.resolv = d.dns.resolv
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil, context.Canceled
	}
	d.plain = append(d.plain, n)
	d.mu.Unlock()
	if err := n.initChain(ctx); err != nil {
		return nil, err
	}
	// A plain config.toml: the listen address on loopback, nothing else.
	cfg := fmt.Sprintf("[Node.P2P]\nListenAddr = %q\n", "127.0.0.1:"+strconv.Itoa(n.p2p))
	if err := os.WriteFile(n.configPath, []byte(cfg), 0o644); err != nil {
		return nil, err
	}

	rec, err := agent.SignRecord(key, uint64(time.Now().Unix()), agent.Endpoint{IP: net.IPv4(127, 0, 0, 1), TCP: n.p2p, UDP: n.p2p})
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		agent.Announce(actx, rc, string(spec.Role), func() string { return rec }, n.log)
	}()
	n.mu.Lock()
	n.agent, n.agDone = cancel, done // stop ends the announcements
	n.mu.Unlock()
	d.waitRegistered(ctx, []nodeSpec{spec}, 15*time.Second)
	// Let the other agents' first dials of it fail (see above).
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(time.Second):
	}

	url := d.dns.url(member)
	args := []string{
		"--datadir", n.dataDir, "--config", n.configPath, "--nodekey", d.env.path(rel),
		"--nat", "extip:127.0.0.1", "--bootnodes", "", "--discovery.dns", url,
		"--ipcpath", n.ipcPath,
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(n.http), "--http.api", "eth,net,web3,admin",
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", strconv.Itoa(n.auth),
		"--syncmode", "full", "--cache", "64", "--verbosity", "3",
	}
	if err := n.launch(ctx, args); err != nil {
		return nil, err
	}
	d.out.printf("started    %-16s %-9s plain geth, only --discovery.dns %s  rpc %s  log %s", spec.Label(), "no agent", url, n.RPCURL(), d.rel(n.logPath))
	if err := d.saveState(); err != nil {
		d.log.Warn("writing devnet.json", "err", err)
	}
	return n, nil
}

// watchPlain reports when n, whose geth answered at started, has a
// connection to every running geth node of its member (the nodes of its
// tree that let it in: another member's public node admits only public
// nodes), and which side dialled each.
func (d *Devnet) watchPlain(ctx context.Context, n *gethNode, started time.Time) {
	reported := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(pollEvery):
		}
		want := d.memberGeths(n.spec.Member)
		var peers []peerInfo
		if err := callIPC(ctx, n.ipcPath, &peers, "admin_peers"); err != nil {
			continue
		}
		var dialled, inbound []string
		for _, w := range want {
			i := slices.IndexFunc(peers, func(p peerInfo) bool { return p.ID == w.spec.ID })
			switch {
			case i < 0:
			case peers[i].Network.Inbound:
				inbound = append(inbound, w.spec.Label())
			default:
				dialled = append(dialled, w.spec.Label())
			}
		}
		took := time.Since(started)
		// Joined: connected to every one. Usually it dialled some of them
		// from the tree (it has no other peer to dial); but its record is
		// registered before geth starts, and the member's agents may win
		// the race to every connection (their first dials fail while it is
		// not listening; their redials can come before its own dials from
		// the tree), so a join with only inbound connections counts too,
		// and the line says so. That geth finds its peers through DNS
		// alone is TestGethDiscoveryDNS's to show.
		if len(want) > 0 && len(dialled)+len(inbound) == len(want) {
			seq := uint64(0)
			if v, err := d.dns.trees.Tree(n.spec.Member); err == nil {
				seq = v.Seq
			}
			note := ""
			if len(inbound) > 0 {
				note = "; " + strings.Join(inbound, ", ") + " dialled it first (its agent knew it from the registrar)"
			}
			how := "it dialled " + strings.Join(dialled, ", ")
			if len(dialled) == 0 {
				how = "it dialled none itself"
			}
			d.out.printf("dns        %-16s joined via DNS %.1fs after its geth was up: %s (from the tree at %s, seq %d)%s",
				n.spec.Label(), took.Seconds(), how, d.dns.trees.Zone(n.spec.Member), seq, note)
			d.mon.plainJoined(n.spec.Member, took, len(dialled))
			return
		}
		if !reported && took > plainJoinReport {
			reported = true
			d.out.printf("dns        %-16s not joined %.0fs after its geth was up: connected to %d of its member's %d nodes; DNS answers so far %d (its log: %s)",
				n.spec.Label(), took.Seconds(), len(dialled)+len(inbound), len(want), d.dns.srv.Stats().Answers, d.rel(n.logPath))
		}
	}
}

// peerInfo is what watchPlain reads of admin_peers.
type peerInfo struct {
	ID      string `json:"id"`
	Network struct {
		Inbound bool `json:"inbound"`
	} `json:"network"`
}

// memberGeths are member's running geth nodes (the devnet's own, with
// agents).
func (d *Devnet) memberGeths(member string) []*gethNode {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []*gethNode
	for _, n := range d.nodes {
		if _, up := n.running(); up && n.spec.Member == member {
			out = append(out, n)
		}
	}
	return out
}

// startIn starts cmd; with resolv set, in a mount namespace of its own in
// which resolv is bind-mounted over /etc/resolv.conf, so that geth's
// resolver asks the devnet's DNS server and nothing else changes for it.
//
// Namespaces belong to threads: a goroutine locked to its thread unshares
// that thread's mount namespace, forks the child from it, and stays until
// the child has exited (exited closes) because Pdeathsig signals a child
// when the thread that forked it ends. It never unlocks, so the thread
// ends with it and no other goroutine ever runs in that namespace.
func startIn(cmd *exec.Cmd, resolv string, exited <-chan struct{}) error {
	if resolv == "" {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWNS); err != nil {
			errc <- fmt.Errorf("a mount namespace for /etc/resolv.conf: unshare: %w", err)
			return
		}
		if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
			errc <- fmt.Errorf("a mount namespace for /etc/resolv.conf: %w", err)
			return
		}
		if err := syscall.Mount(resolv, "/etc/resolv.conf", "", syscall.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind-mounting %s over /etc/resolv.conf: %w", resolv, err)
			return
		}
		if err := cmd.Start(); err != nil {
			errc <- err
			return
		}
		errc <- nil
		<-exited
	}()
	return <-errc
}
