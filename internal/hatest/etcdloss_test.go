package hatest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/httpapi"
	"github.com/consortium/consortium/internal/testutil"
)

// TestEtcdMemberLoss SIGKILLs etcd members under three replicas and a small
// fleet of agents. One member down (the leader): registrations through
// every replica are acknowledged, renewals through every replica answer 200,
// /readyz stays 200. Two down: /readyz answers 503 on every replica within a
// few seconds; a registration gets 503 with a JSON body that says the store
// is unavailable; every replica still answers peer sets from memory, and no
// agent's set loses a peer while etcd is out. Both back: /readyz 200, every
// registration acknowledged before is listed by every replica, and new ones
// through each replica reach all of them.
func TestEtcdMemberLoss(t *testing.T) {
	began := time.Now()
	ps := newProcs(t)
	ec := startEtcd(t, ps, 3)
	sd := writeSeed(t, "acme", "globex")
	rs := startReplicas(t, ps, 3, ec.storeURL(), sd)

	members := []string{"acme", "globex"}
	f := &fleet{}
	for i := range 60 {
		m, role := i%2, "tx"
		if i%10 < 2 {
			role = "public"
		}
		f.agents = append(f.agents, newAgent(t, newNode(t, members[m], role, m+1, i), i%3, rs, sd.members[members[m]]))
	}
	f.run(t, rs, sd.admin)
	time.Sleep(ttl / 3)
	acked := map[string]string{}
	for _, a := range f.agents {
		acked[a.id] = a.member
	}
	seq := 1000 // address of the next test node
	next := func(m string) *node {
		seq++
		return newNode(t, m, "tx", 9, seq)
	}
	base := fleetTotals(f)

	// One member down: the leader, so that an election happens too.
	lead, err := ec.leader()
	if err != nil {
		t.Fatal(err)
	}
	downAt := time.Now()
	ec.kill(lead)
	t.Logf("SIGKILLed etcd member e%d (the leader)", lead)
	var lat []time.Duration
	retried := 0
	for round := range 4 {
		for _, r := range rs {
			m := members[round%2]
			x := next(m)
			start := time.Now()
			code, body, tries := registerRetry(r, sd.members[m], x, 3)
			lat = append(lat, time.Since(start))
			retried += tries - 1
			if code != http.StatusCreated {
				t.Errorf("one etcd member down: registration through %s: %d %s", r.name, code, body)
				continue
			}
			acked[x.id] = m
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("one member down: %d registrations through the 3 replicas acknowledged in %s (%d retried after a 503)", len(lat), summarise(lat), retried)
	for _, r := range rs {
		a := agentHomedAt(f, 0)
		if code, body, err := do("POST", r.url()+"/v1/nodes/"+a.id+"/renew", a.cred, nil); err != nil || code != http.StatusOK {
			t.Errorf("one etcd member down: renewal through %s: %d %s %v", r.name, code, body, err)
		}
		if code, _, err := get(r.url()+"/readyz", ""); err != nil || code != http.StatusOK {
			t.Errorf("one etcd member down: %s /readyz %d %v", r.name, code, err)
		}
	}
	d := fleetTotals(f).minus(base)
	t.Logf("one member down, %s: agents' renewals %d answered 200, %d failed, %d found their lease lapsed", time.Since(downAt).Round(time.Millisecond), d.renewals, d.errs, d.lost)
	if d.errs > 0 || d.lost > 0 || d.renewals == 0 {
		t.Errorf("renewals did not go on with one etcd member down")
	}

	// Two members down: no quorum.
	before := peerCounts(t, f)
	second := (lead + 1) % 3
	outAt := time.Now()
	ec.kill(second)
	t.Logf("SIGKILLed etcd member e%d: 1 of 3 members left, no quorum", second)
	for i, took := range untilStatus(rs, "/readyz", http.StatusServiceUnavailable, 15*time.Second) {
		if took < 0 {
			t.Errorf("%s /readyz not 503 15 s after etcd lost its quorum", rs[i].name)
			continue
		}
		t.Logf("no quorum: %s /readyz 503 %s after the second member was killed", rs[i].name, ms(took))
	}
	for _, r := range rs {
		x := next("acme")
		start := time.Now()
		code, body, err := register(r.url(), sd.members["acme"], x.req)
		took := time.Since(start)
		var eb httpapi.ErrorBody
		jerr := json.Unmarshal(body, &eb)
		msg := strings.ToLower(eb.Error)
		switch {
		case err != nil:
			t.Errorf("no quorum: registration through %s: %v", r.name, err)
		case code != http.StatusServiceUnavailable || jerr != nil || eb.Code != "store_unavailable" ||
			!(strings.Contains(msg, "store") || strings.Contains(msg, "etcd")) || !strings.Contains(msg, "unavailable"):
			t.Errorf("no quorum: registration through %s: want 503 with a JSON body saying the store is unavailable, got %d %s", r.name, code, body)
		default:
			t.Logf("no quorum: registration through %s: %d in %s: %s", r.name, code, ms(took), body)
		}
		a := agentHomedAt(f, 1)
		if code, body, err := get(r.url()+"/v1/nodes/"+a.id+"/peers", a.cred); err != nil || code != http.StatusOK {
			t.Errorf("no quorum: peer set through %s: %d %s %v", r.name, code, body, err)
		}
		// Not required by issue 6, but telling: a replica that did not
		// take a node's renewals cannot renew it once its lease ran out
		// there, and it cannot be registered again (503) either.
		code, body, err = do("POST", r.url()+"/v1/nodes/"+a.id+"/renew", a.cred, nil)
		t.Logf("no quorum: renewal of a node homed at %s through %s: %d %s %v", rs[1].name, r.name, code, bytes.TrimSpace(body), err)
	}
	// Agents keep their peers while etcd is out, longer than a lease.
	time.Sleep(time.Until(outAt.Add(2 * ttl)))
	after := peerCounts(t, f)
	lost := 0
	for id, n := range before {
		if after[id] < n {
			if lost < 3 {
				t.Errorf("no quorum for %s: agent %s's set went from %d to %d peers", time.Since(outAt).Round(time.Second), id[:12], n, after[id])
			}
			lost++
		}
	}
	// And what the agents themselves were told meanwhile.
	for _, a := range f.agents {
		for _, c := range a.callsSnapshot() {
			if c.status == http.StatusOK && c.bodyRead.After(outAt) && c.peers < before[a.id] {
				if lost < 3 {
					t.Errorf("no quorum: agent %s was answered a set of %d peers (had %d) by %s", a.id[:12], c.peers, before[a.id], replicaName(rs, c.addr))
				}
				lost++
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d sets lost peers while etcd had no quorum (%d agents)", lost, len(before))
		t.Logf("events on the replicas (expired: a lease ran out there): %s", expiries(rs, sd.admin))
	} else {
		t.Logf("no quorum for %s: all %d agents kept every peer", time.Since(outAt).Round(time.Millisecond), len(before))
	}

	// Both back.
	backAt := time.Now()
	ec.start(lead, second)
	t.Logf("etcd members e%d and e%d restarted and healthy in %s", lead, second, time.Since(backAt).Round(time.Millisecond))
	for i, took := range untilStatus(rs, "/readyz", http.StatusOK, 30*time.Second) {
		if took < 0 {
			t.Errorf("%s /readyz not 200 30 s after etcd's members came back", rs[i].name)
			continue
		}
		t.Logf("members back: %s /readyz 200 %s after their restart began", rs[i].name, ms(took))
	}
	// Nothing acknowledged before (or during) the outage is missing.
	checkPresent(t, rs, sd.admin, acked)
	// Writes work again, and reach every replica: each replica learns the
	// others' through its etcd watch, which has to start again after the
	// outage.
	fresh := map[string]string{}
	var writtenAt time.Time
	for _, r := range rs {
		x := next("globex")
		code, body, _ := registerRetry(r, sd.members["globex"], x, 3)
		if code != http.StatusCreated {
			t.Errorf("etcd back: registration through %s: %d %s", r.name, code, body)
			continue
		}
		fresh[x.id] = "globex"
		writtenAt = time.Now()
	}
	for _, r := range rs {
		var missing int
		if !testutil.PollTrue(15*time.Second, func() bool {
			missing = len(fresh)
			if ns, err := nodes(r.url(), sd.admin); err == nil {
				for _, n := range ns {
					if fresh[n.ID] != "" {
						missing--
					}
				}
			}
			return missing == 0
		}) {
			t.Errorf("etcd back: %s still lacks %d of the %d registrations made through the replicas 15 s after they were acknowledged", r.name, missing, len(fresh))
			continue
		}
		t.Logf("etcd back: %s lists the %d registrations made through the 3 replicas %s after the last was acknowledged", r.name, len(fresh), ms(time.Since(writtenAt)))
	}
	f.stop()
	t.Logf("runtime %s", time.Since(began).Round(time.Millisecond))
}

// untilStatus polls path on every replica at once (with testutil.Poll's
// backoff: at most 100 ms apart) until it answers status; it returns for
// each replica the time that took, or -1 if it did not within limit.
func untilStatus(rs []*replica, path string, status int, limit time.Duration) []time.Duration {
	out := make([]time.Duration, len(rs))
	start := time.Now()
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Go(func() {
			out[i] = -1
			testutil.PollTrue(limit, func() bool {
				code, _, _ := get(r.url()+path, "")
				if code == status {
					out[i] = time.Since(start)
					return true
				}
				return false
			})
		})
	}
	wg.Wait()
	return out
}

// registerRetry registers through one replica, trying again after a 503 (a
// store in the middle of an election) up to tries times, 1 s apart, as an
// agent would. It returns the last status and body and the attempts made.
func registerRetry(r *replica, cred string, x *node, tries int) (int, []byte, int) {
	var code int
	var body []byte
	for k := 1; ; k++ {
		var err error
		code, body, err = register(r.url(), cred, x.req)
		if err != nil {
			code, body = 0, []byte(err.Error())
		}
		if code != http.StatusServiceUnavailable || k == tries {
			return code, body, k
		}
		time.Sleep(time.Second)
	}
}

// agentHomedAt is the first agent whose home is replica i.
func agentHomedAt(f *fleet, i int) *agent {
	for _, a := range f.agents {
		if a.home == i {
			return a
		}
	}
	panic(fmt.Sprintf("no agent homed at replica %d", i))
}

// peerCounts is the size of each agent's set, read through its home
// replica (the agent's own last answer may be older).
func peerCounts(t testing.TB, f *fleet) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, a := range f.agents {
		code, body, err := get(a.base+"/v1/nodes/"+a.id+"/peers", a.cred)
		if err != nil || code != http.StatusOK {
			t.Errorf("peer set of %s through its home replica: %d %s %v", a.id[:12], code, body, err)
			continue
		}
		var ps struct {
			Static []string `json:"static"`
		}
		if err := json.Unmarshal(body, &ps); err != nil {
			t.Error(err)
			continue
		}
		out[a.id] = len(ps.Static)
	}
	return out
}

// totals are the fleet's renewal counters.
type totals struct{ renewals, errs, lost int64 }

func fleetTotals(f *fleet) totals {
	var s totals
	for _, a := range f.agents {
		s.renewals += a.renewals.Load()
		s.errs += a.renewErrs.Load()
		s.lost += a.renewLost.Load()
	}
	return s
}

func (s totals) minus(o totals) totals {
	return totals{s.renewals - o.renewals, s.errs - o.errs, s.lost - o.lost}
}
