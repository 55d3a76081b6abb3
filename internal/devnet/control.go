package devnet

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/consortium/consortium/internal/consortiuminit"
)

// Nodes lists the devnet's nodes, bootnodes first.
func (d *Devnet) Nodes() []Node {
	d.mu.Lock()
	boots, nodes := d.boots, d.nodes
	d.mu.Unlock()
	var out []Node
	for _, b := range boots {
		out = append(out, Node{Member: b.spec.Member, Name: b.spec.Name, Role: string(b.spec.Role), ID: b.spec.ID, Running: true})
	}
	for _, n := range nodes {
		pid, up := n.running()
		out = append(out, Node{
			Member: n.spec.Member, Name: n.spec.Name, Role: string(n.spec.Role), ID: n.spec.ID,
			RPC: n.RPCURL(), IPC: n.ipcPath, Enode: n.Enode(), Signer: n.spec.Signer, PID: pid, Running: up, Log: n.logPath,
		})
	}
	return out
}

func (d *Devnet) node(label string) (*gethNode, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range d.nodes {
		if n.spec.Label() == label {
			return n, nil
		}
	}
	return nil, fmt.Errorf("%w (no geth node %q)", ErrUnknownMember, label)
}

// StopNode stops one geth node and its agent, as when its machine goes
// down; the rest of the devnet runs on.
func (d *Devnet) StopNode(label string) error {
	n, err := d.node(label)
	if err != nil {
		return err
	}
	n.stop()
	d.out.printf("stopped    %s", label)
	return d.saveState()
}

// StartNode starts a node StopNode stopped: cold start from the registrar,
// geth on its existing chain, agent.
func (d *Devnet) StartNode(ctx context.Context, label string) error {
	n, err := d.node(label)
	if err != nil {
		return err
	}
	if _, up := n.running(); up {
		return nil
	}
	if err := n.start(ctx); err != nil {
		return err
	}
	d.out.printf("started    %s", label)
	return d.saveState()
}

// RegistrarURL is the registrar's base URL.
func (d *Devnet) RegistrarURL() string { return d.reg.url }

// Dir is the work directory, absolute.
func (d *Devnet) Dir() string { return d.dir }

// Manifest is init's consortium.json with the members that joined since.
func (d *Devnet) Manifest() consortiuminit.Manifest {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := d.manifest
	m.Members = append(slices.Clone(m.Members), d.added...)
	return m
}

// Stats are the moments the operator waits for.
func (d *Devnet) Stats() Stats { return d.mon.stats() }

func (d *Devnet) saveState() error {
	s := State{
		PID: os.Getpid(), Started: d.start, Registrar: d.reg.url,
		AdminCredential: filepath.Join(d.dir, filepath.FromSlash(consortiuminit.AdminCredentialFile)),
	}
	d.mu.Lock()
	s.Added = d.added
	boots := d.boots
	d.mu.Unlock()
	for _, b := range boots {
		s.Nodes = append(s.Nodes, NodeState{Member: b.spec.Member, Name: b.spec.Name, Role: string(b.spec.Role), ID: b.spec.ID, Enode: b.b.Enode()})
	}
	for _, n := range d.Nodes() {
		if n.Role == string(consortiuminit.RoleBootnode) {
			continue
		}
		ns := NodeState{Member: n.Member, Name: n.Name, Role: n.Role, ID: n.ID, Enode: n.Enode, RPC: n.RPC, IPC: n.IPC, PID: n.PID, Log: n.Log}
		if n.Signer != nil {
			ns.Signer = n.Signer.Hex()
		}
		s.Nodes = append(s.Nodes, ns)
	}
	d.mu.Lock()
	plain := d.plain
	d.mu.Unlock()
	for _, n := range plain {
		pid, _ := n.running()
		s.Nodes = append(s.Nodes, NodeState{Member: n.spec.Member, Name: n.spec.Name, Role: "plain geth (--discovery.dns)", ID: n.spec.ID,
			Enode: n.Enode(), RPC: n.RPCURL(), IPC: n.ipcPath, PID: pid, Log: n.logPath})
	}
	return writeState(d.dir, s)
}

func (d *Devnet) printURLs() {
	var b strings.Builder
	fmt.Fprintf(&b, "URLs:\n  %-18s %s\n  %-18s %s\n", "registrar", d.reg.url, "dashboard", d.reg.url+"/ui/")
	for _, n := range d.Nodes() {
		if n.RPC == "" {
			continue
		}
		extra := ""
		if n.Signer != nil {
			extra = "  signer " + n.Signer.Hex()
		}
		fmt.Fprintf(&b, "  %-18s %s%s\n", n.Label(), n.RPC, extra)
	}
	fmt.Fprintf(&b, "  state: %s; component logs: %s; Ctrl-C stops everything", d.rel(filepath.Join(d.dir, StateFile)), d.rel(d.logFile.Name()))
	d.out.printf("%s", b.String())
}

// rel shortens a path under the work directory for printing.
func (d *Devnet) rel(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// printer writes the operator's lines, each stamped with the time since
// the devnet started.
type printer struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
}

func (p *printer) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%6.1fs] "+format+"\n", append([]any{time.Since(p.start).Seconds()}, args...)...)
}
