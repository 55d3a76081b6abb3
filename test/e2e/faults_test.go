//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// The failure scenarios: each breaks the running consortium in one way,
// measures how it recovers, and leaves it whole for the next.

// network finds one of the project's docker networks.
func (c *consortium) network(t *testing.T, name string) string {
	out, err := run(context.Background(), nil, "docker", "network", "ls", "-q",
		"--filter", "label=com.docker.compose.project="+project, "--filter", "label=com.docker.compose.network="+name)
	if err != nil || len(strings.Fields(out)) != 1 {
		t.Fatalf("network %s: %q %v", name, out, err)
	}
	return strings.Fields(out)[0]
}

func (c *consortium) mustContainer(t *testing.T, svc string) string {
	id, err := c.container(svc)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (c *consortium) docker(t *testing.T, args ...string) {
	t.Helper()
	if _, err := run(context.Background(), nil, "docker", args...); err != nil {
		t.Fatal(err)
	}
}

func (c *consortium) waitMesh(t *testing.T, timeout time.Duration) {
	t.Helper()
	waitFor(t, "full mesh", timeout, time.Second, func() (bool, string) {
		g := c.meshGaps()
		return len(g) == 0, strings.Join(g, "; ")
	})
}

// memberCutOff takes member c off the internet: its public node leaves the
// internet network, and c loses its way to the registrar (the registrar
// leaves c's network; that is c's egress in this compose file). a and b
// must keep sealing; once c is back it must peer and catch up.
func (c *consortium) memberCutOff(t *testing.T) {
	c.waitMesh(t, time.Minute)
	internet, cnet := c.network(t, "internet"), c.network(t, "c")
	cpub, regs := c.mustContainer(t, "c-public"), c.registrars(t)
	startA, _, err := c.head("a-tx")
	if err != nil {
		t.Fatal(err)
	}
	startC, _, _ := c.head("c-tx")
	c.docker(t, "network", "disconnect", internet, cpub)
	for _, reg := range regs {
		c.docker(t, "network", "disconnect", cnet, reg)
	}
	cut := time.Now()
	t.Logf("c cut off at block %d (c at %d) for %s", startA, startC, outage)
	reconnected := false
	reconnect := func() {
		if !reconnected {
			reconnected = true
			// Back with the same addresses and the DNS names compose gave
			// them (agents find the registrar by its service name).
			c.docker(t, "network", "connect", "--ip", c.publicIP("c"), "--alias", "c-public", internet, cpub)
			for i, reg := range regs {
				c.docker(t, "network", "connect", "--ip", fmt.Sprintf("%s.3.%d", netPrefix, i+2), "--alias", "registrar", cnet, reg)
			}
		}
	}
	defer reconnect()
	time.Sleep(outage - time.Since(cut))

	// a and b kept sealing, both of them, and without c.
	ch, err := c.chain("a-tx", startA+1)
	if err != nil {
		t.Fatal(err)
	}
	by := map[string]int{}
	for _, s := range ch.Signers {
		by[c.signers[strings.ToLower(s)]]++
	}
	wantMin := int(outage.Seconds()/float64(c.man.Period)) / 2
	if len(ch.Signers) < wantMin || by["a"] == 0 || by["b"] == 0 {
		t.Errorf("during the cut a and b sealed %d blocks (by member %v), want at least %d from both", len(ch.Signers), by, wantMin)
	}
	t.Logf("during the %s cut: %d blocks at a (by member: %v)", outage, len(ch.Signers), by)

	reconnect()
	back := time.Now()
	// When each of c's nodes is live at the registrar again: how long c's
	// agents (and its bootnode) took to notice that the registrar is back.
	liveAt := map[string]time.Duration{}
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			if ns, err := c.registrarNodes(); err == nil {
				for _, n := range ns {
					if nd := c.byID[n.ID]; nd != nil && nd.member == "c" && n.Live {
						c.mu.Lock()
						if _, ok := liveAt[nd.service]; !ok {
							liveAt[nd.service] = time.Since(back)
						}
						c.mu.Unlock()
					}
				}
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
	var peeredAt time.Duration
	caughtUp := waitFor(t, "c peered and caught up", 3*time.Minute, 250*time.Millisecond, func() (bool, string) {
		var wg sync.WaitGroup
		var ps []peer
		var perr error
		var aHead, cHead uint64
		var cHash string
		wg.Add(3)
		go func() { defer wg.Done(); ps, perr = c.peers("c-public") }()
		go func() { defer wg.Done(); aHead, _, _ = c.head("a-tx") }()
		go func() { defer wg.Done(); cHead, cHash, _ = c.head("c-tx") }()
		wg.Wait()
		if perr != nil {
			return false, perr.Error()
		}
		have := map[string]bool{}
		for _, p := range ps {
			have[c.name(p.ID)] = true
		}
		if peeredAt == 0 && have["a-public"] && have["b-public"] {
			peeredAt = time.Since(back)
		}
		if peeredAt == 0 {
			return false, fmt.Sprintf("c-public peers: %v", have)
		}
		if cHead+1 < aHead {
			return false, fmt.Sprintf("c-tx at %d, a-tx at %d", cHead, aHead)
		}
		aHash, err := c.blockHash("a-tx", cHead)
		if err != nil || aHash != cHash {
			return false, fmt.Sprintf("c-tx block %d is %s, a-tx's is %s", cHead, cHash, aHash)
		}
		return true, ""
	})
	close(stopWatch)
	<-watchDone
	var lastLive time.Duration
	var order []string
	for svc, d := range liveAt {
		lastLive = max(lastLive, d)
		order = append(order, fmt.Sprintf("%s %.1f s", svc, d.Seconds()))
	}
	sort.Strings(order)
	if len(liveAt) == 4 {
		c.record(t, "c reconnected → all 4 of c's nodes registered again", lastLive, "their leases ran out during the cut: "+strings.Join(order, ", "))
	} else {
		t.Logf("c's nodes live again at the registrar by the time c caught up: %v", order)
	}
	c.record(t, "c reconnected → c-public peered with a and b", peeredAt, fmt.Sprintf("after a %s cut", outage))
	note := fmt.Sprintf("target %s: met", targetCatch)
	if caughtUp > targetCatch {
		note = fmt.Sprintf("target %s: NOT met", targetCatch)
	}
	c.record(t, "c reconnected → c caught up (c-tx on a's chain)", caughtUp, note)
	if caughtUp > boundCatch {
		t.Errorf("c caught up %.1f s after reconnecting, beyond the bound %s (target %s; see docs/deploy.md, \"Recovery after a cut\")", caughtUp.Seconds(), boundCatch, targetCatch)
	}
	c.waitMesh(t, 2*time.Minute)
}

// fingerprints are the live devp2p connections of every geth node: a
// connection that drops and comes back gets a new ephemeral port, so it
// shows up as a different fingerprint.
func (c *consortium) fingerprints(t *testing.T) map[string]bool {
	fp := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range c.gethNodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ps, err := c.peers(n.service)
			if err != nil {
				t.Errorf("%s: %v", n.service, err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, p := range ps {
				fp[n.service+" ↔ "+c.name(p.ID)+" "+p.Local+"/"+p.Remote] = true
			}
		}()
	}
	wg.Wait()
	return fp
}

func missing(before, now map[string]bool) []string {
	var out []string
	for k := range before {
		if !now[k] {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// registrarOutage stops the registrar: no connection may drop, and once it
// is back every lease must have been renewed within one TTL.
// registrars are the containers of the three registrar replicas.
func (c *consortium) registrars(t *testing.T) []string {
	return []string{c.mustContainer(t, "registrar"), c.mustContainer(t, "registrar-2"), c.mustContainer(t, "registrar-3")}
}

// replicaAndEtcdMemberLost kills one registrar replica (SIGKILL) and stops
// one of the three etcd members for two TTLs: the other replicas go on, so
// no lease lapses and no connection drops; then both come back.
func (c *consortium) replicaAndEtcdMemberLost(t *testing.T) {
	c.waitMesh(t, time.Minute)
	before := c.fingerprints(t)
	r2, e3 := c.mustContainer(t, "registrar-2"), c.mustContainer(t, "etcd-3")
	c.docker(t, "kill", r2)
	c.docker(t, "stop", e3)
	lost := time.Now()
	defer c.docker(t, "start", e3, r2)
	var lapsed []string
	for time.Since(lost) < 2*ttl {
		ns, err := c.registrarNodes()
		if err != nil {
			t.Errorf("%.1f s after losing a replica and an etcd member, the registrar did not answer: %v", time.Since(lost).Seconds(), err)
		}
		for _, n := range ns {
			if !n.Live {
				lapsed = append(lapsed, fmt.Sprintf("%s at %.1f s", c.name(n.ID), time.Since(lost).Seconds()))
			}
		}
		if len(ns) != len(c.nodes) && err == nil {
			t.Errorf("%d of %d nodes listed", len(ns), len(c.nodes))
		}
		time.Sleep(time.Second)
	}
	if len(lapsed) > 0 {
		t.Errorf("leases lapsed with one replica and one etcd member down: %v", lapsed)
	}
	if m := missing(before, c.fingerprints(t)); len(m) > 0 {
		t.Errorf("connections dropped with one replica and one etcd member down: %v", m)
	}
	t.Logf("one registrar replica killed and one etcd member stopped for %s: every lease held, all %d connection ends unchanged", 2*ttl, len(before))
}

func (c *consortium) registrarOutage(t *testing.T) {
	c.waitMesh(t, time.Minute)
	before := c.fingerprints(t)
	startA, _, _ := c.head("a-tx")
	regs := c.registrars(t)
	c.docker(t, append([]string{"stop"}, regs...)...)
	stopped := time.Now()
	for time.Since(stopped) < outage {
		time.Sleep(min(10*time.Second, outage-time.Since(stopped)))
		if m := missing(before, c.fingerprints(t)); len(m) > 0 {
			t.Errorf("%.0f s into the registrar outage, connections dropped: %v", time.Since(stopped).Seconds(), m)
		}
	}
	c.docker(t, append([]string{"start"}, regs...)...)
	// The registrar extends every lease it finds lapsed at start-up by one
	// TTL, all to the same instant; a lease renewed by its agent ends later.
	var grace time.Time
	waitFor(t, "registrar answering", time.Minute, 100*time.Millisecond, func() (bool, string) {
		ns, err := c.registrarNodes()
		if err != nil {
			return false, err.Error()
		}
		counts := map[time.Time]int{}
		for _, n := range ns {
			counts[n.Expires]++
		}
		for e, k := range counts {
			if k > counts[grace] {
				grace = e
			}
		}
		return true, ""
	})
	back := time.Now()
	d := waitFor(t, "every lease renewed", 2*ttl, 250*time.Millisecond, func() (bool, string) {
		ns, err := c.registrarNodes()
		if err != nil {
			return false, err.Error()
		}
		var stale []string
		for _, n := range ns {
			if !n.Live || !n.Expires.After(grace) {
				stale = append(stale, c.name(n.ID))
			}
		}
		if len(ns) != len(c.nodes) {
			stale = append(stale, fmt.Sprintf("%d of %d nodes listed", len(ns), len(c.nodes)))
		}
		return len(stale) == 0, fmt.Sprintf("not renewed: %v", stale)
	})
	c.record(t, "registrar back → every lease renewed", d, fmt.Sprintf("after a %s outage; TTL %s; 12 nodes", outage, ttl))
	if d > ttl {
		t.Errorf("leases renewed %.1f s after the registrar came back, more than one TTL (%s)", d.Seconds(), ttl)
	}
	if m := missing(before, c.fingerprints(t)); len(m) > 0 {
		t.Errorf("after the registrar outage, connections dropped: %v", m)
	} else {
		t.Logf("all %d connection ends unchanged through the outage and after", len(before))
	}
	endA, _, _ := c.head("a-tx")
	t.Logf("chain went from %d to %d meanwhile; registrar answered %.1f s after start", startA, endA, back.Sub(stopped).Seconds()-outage.Seconds())
}

type seqView struct {
	nodeView
	Seq uint64 `json:"seq"`
}

func (c *consortium) bootnodeRecord(t *testing.T, id string) (seqView, bool) {
	code, b, err := c.get("/v1/nodes/"+id, c.admin)
	if err != nil || code != 200 {
		return seqView{}, false
	}
	var v seqView
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v, true
}

// bootnodeRecreated removes member a's bootnode container and creates a
// new one: the key comes from the init output, so the enode must be the
// same; its node database was in the old container, so every node it knows
// afterwards it learned again.
func (c *consortium) bootnodeRecreated(t *testing.T) {
	bn := c.nodes["a-bootnode"]
	addr := netip.MustParseAddrPort(bn.ip + ":30301")
	old, ok := c.bootnodeRecord(t, bn.id)
	if !ok {
		t.Fatal("a-bootnode not registered")
	}
	if tab, err := bootnodeTable(addr, 5*time.Second); err == nil {
		t.Logf("before: a-bootnode knows %d nodes", len(tab))
	}
	if _, err := c.composeRun(nil, "rm", "-s", "-f", "-v", "a-bootnode"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.composeRun(nil, "up", "-d", "--no-deps", "a-bootnode"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a-bootnode registered again", time.Minute, 100*time.Millisecond, func() (bool, string) {
		v, ok := c.bootnodeRecord(t, bn.id)
		return ok && v.Live && v.Seq > old.Seq, fmt.Sprintf("%+v", v)
	})
	// Timed from the new container's start, as docker recorded it.
	s, _ := startedAt(c.mustContainer(t, "a-bootnode"))
	started, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("StartedAt %q: %v", s, err)
	}
	d := time.Since(started)
	now, _ := c.bootnodeRecord(t, bn.id)
	if now.Enode != old.Enode {
		t.Errorf("a-bootnode's enode changed: %s → %s", old.Enode, now.Enode)
	}
	c.record(t, "bootnode recreated → registered again, same enode", d, "from the new container's start (an upper bound: polled after docker-compose up returned)")
	want := []string{"a-validator", "a-tx", "a-public"}
	waitFor(t, "a's nodes back in a-bootnode's table", 3*time.Minute, time.Second, func() (bool, string) {
		tab, err := bootnodeTable(addr, 5*time.Second)
		if err != nil {
			return false, err.Error()
		}
		var miss []string
		for _, s := range want {
			if !tab[c.nodes[s].id] {
				miss = append(miss, s)
			}
		}
		return len(miss) == 0, fmt.Sprintf("a-bootnode does not know %v", miss)
	})
	c.record(t, "bootnode recreated → rediscovered by a's 3 geth nodes", time.Since(started), "from the new container's start: its FINDNODE answer holds all three again")
}

// publicNodeMoves recreates member a's public node with another address on
// the internet network: b and c must reach it there, with no other
// container restarted.
func (c *consortium) publicNodeMoves(t *testing.T) {
	c.waitMesh(t, time.Minute)
	pub := c.nodes["a-public"]
	newIP := netPrefix + ".0.21"
	starts := map[string]string{}
	for svc := range c.nodes {
		for _, s := range []string{svc, svc + "-agent"} {
			if s == "a-public" || s == "a-public-agent" || strings.HasSuffix(s, "bootnode-agent") {
				continue
			}
			if id, err := c.container(s); err == nil {
				starts[s], _ = startedAt(id)
			}
		}
	}
	t0 := time.Now()
	if _, err := c.composeRun([]string{"A_PUBLIC_IP=" + newIP}, "up", "-d", "--no-deps", "--force-recreate", "a-public", "a-public-agent"); err != nil {
		t.Fatal(err)
	}
	recreated := time.Now()
	d := waitFor(t, "b and c peered with a-public at its new address", 3*time.Minute, 250*time.Millisecond, func() (bool, string) {
		var why []string
		for _, svc := range []string{"b-public", "c-public"} {
			ps, err := c.peers(svc)
			if err != nil {
				return false, err.Error()
			}
			ok := false
			for _, p := range ps {
				if p.ID == pub.id && strings.HasPrefix(p.Remote, newIP+":") {
					ok = true
				}
			}
			if !ok {
				why = append(why, svc+" not connected to "+newIP)
			}
		}
		return len(why) == 0, strings.Join(why, "; ")
	})
	c.record(t, "public node recreated at a new IP → b and c peered with it", recreated.Sub(t0)+d, fmt.Sprintf("from the recreate command; %.1f s of it docker's stop and create", recreated.Sub(t0).Seconds()))
	v, _ := c.bootnodeRecord(t, pub.id)
	if !strings.Contains(v.PublicEnode, "@"+newIP+":") {
		t.Errorf("registrar has a-public's public endpoint %q, want %s", v.PublicEnode, newIP)
	}
	for s, before := range starts {
		id, err := c.container(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if now, _ := startedAt(id); now != before {
			t.Errorf("%s was restarted (%s → %s)", s, before, now)
		}
	}
	c.waitMesh(t, time.Minute)
}
