package hatest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// runBench starts the registrars of one column (kind "sqlite": one replica
// on SQLite; "etcd": three replicas on a three-member etcd cluster) and
// takes every figure of the table.
func runBench(t *testing.T, kind string, pop *benchPop) benchResult {
	ps := newProcs(t)
	sd := writeSeed(t, pop.members...)
	// As in internal/bench: no rate limit in the way, and leases that
	// outlive the run (no renewal loop runs beside the loads). --ttl given
	// again overrides startReplicas' own.
	extra := []string{"--ttl", "1h", "--rate-limit", "1000000000", "--log-level", "warn"}
	var res benchResult
	var rs []*replica
	var etcdPIDs []int
	if kind == "sqlite" {
		res.name = "SQLite, 1 replica"
		rs = startReplicas(t, ps, 1, "sqlite://"+t.TempDir(), sd, extra...)
	} else {
		res.name = "etcd (3 members), 3 replicas"
		ec := startEtcd(t, ps, 3)
		for _, m := range ec.members {
			etcdPIDs = append(etcdPIDs, m.p.cmd.Process.Pid)
		}
		rs = startReplicas(t, ps, 3, ec.storeURL(), sd, extra...)
	}
	b := &benchTarget{rs: rs, creds: sd.members, hc: &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 2048,
		IdleConnTimeout:     5 * time.Minute,
		DisableCompression:  true,
	}}}
	ctx := context.Background()
	n := len(rs)
	res.add("machine", "load average (1 min) when the run began", "%s", loadavg())
	memLimit := replicaMemLimit + " (set by the suite, as docs/ha.md advises for replicas)"
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		memLimit = v + " (from the environment)"
	}
	res.add("machine", "registrar GOMEMLIMIT", "%s", memLimit)

	// Setup: the 10,000 nodes, each through its home replica.
	_, el, err := runConcurrent(benchWorkers, len(pop.nodes), func(i int) error {
		return b.post(ctx, b.home(i), "/v1/nodes", pop.nodes[i], pop.nodes[i].body, http.StatusCreated, http.StatusOK)
	})
	if err != nil {
		t.Fatalf("registering the setup nodes: %v", err)
	}
	res.add("setup", "register 10,000 nodes into an empty store (64 clients)", "%s (%.0f/s)", el.Round(time.Millisecond), float64(len(pop.nodes))/el.Seconds())
	res.add("setup", "every replica lists the 10,000 nodes, after the last registration's answer", "%s", b.converged(t, sd.admin, len(pop.nodes)))

	// Renewals: each node through its home replica.
	const renewals = 50000
	lat, el, err := runConcurrent(benchWorkers, renewals, func(i int) error {
		k := i % len(pop.nodes)
		s := pop.nodes[k]
		return b.post(ctx, b.home(k), "/v1/nodes/"+s.id+"/renew", s, benchRenewBody, http.StatusOK)
	})
	if err != nil {
		t.Fatalf("renewals: %v", err)
	}
	d := summarise(lat)
	res.add("Renewals", "renewals/s (64 clients, 50,000 renewals)", "%.0f/s", renewals/el.Seconds())
	res.add("Renewals", "renewal latency p99 (p50)", "%s (p50 %s)", ms(d.p99), ms(d.p50))
	target := pop.nodes[pop.target]
	res.add("Renewals", "every replica answers the same ~8,000-peer set, after the last renewal's answer", "%s", b.sameSet(t, target))

	// Peer-set reads of the ~8,000-peer node, spread over the replicas.
	t0 := time.Now()
	first, err := b.peers(ctx, rs[0].url(), target, "", "")
	if err != nil {
		t.Fatal(err)
	}
	res.add("PeerSetReads", "read uncached (the first after a change)", "%s (%.2f MiB)", ms(time.Since(t0)), float64(first.bytes)/(1<<20))
	for _, r := range rs[1:] {
		a, err := b.peers(ctx, r.url(), target, "", "")
		if err != nil {
			t.Fatal(err)
		}
		if a.etag != first.etag || a.bytes != first.bytes {
			t.Errorf("%s answers the target's set with ETag %s (%d bytes), %s with %s (%d bytes)", r.name, a.etag, a.bytes, rs[0].name, first.etag, first.bytes)
		}
	}
	const fullReads, notMod = 2000, 20000
	lat, el, err = runConcurrent(16, fullReads, func(i int) error {
		a, err := b.peers(ctx, b.home(i), target, "", "")
		if err == nil && (a.status != http.StatusOK || a.bytes != first.bytes) {
			err = fmt.Errorf("full read: HTTP %d, %d bytes", a.status, a.bytes)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d = summarise(lat)
	res.add("PeerSetReads", "peer-set reads/s, cached, full 200 JSON (16 clients, 2000 reads)", "%.0f/s (p99 %s)", fullReads/el.Seconds(), ms(d.p99))
	lat, el, err = runConcurrent(16, notMod, func(i int) error {
		a, err := b.peers(ctx, b.home(i), target, "", first.etag)
		if err == nil && a.status != http.StatusNotModified {
			err = fmt.Errorf("conditional read: HTTP %d", a.status)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d = summarise(lat)
	res.add("PeerSetReads", "peer-set reads/s, If-None-Match -> 304 (16 clients, 20000 reads)", "%.0f/s (p99 %s)", notMod/el.Seconds(), ms(d.p99))

	// One change -> 1,000 watchers, spread over the replicas; the change is
	// registered through the first replica.
	ws := make([]bspec, len(pop.watchers))
	for j, k := range pop.watchers {
		ws[j] = pop.nodes[k]
	}
	st := make([]answer, len(ws))
	if _, _, err := runConcurrent(benchWorkers, len(ws), func(j int) error {
		a, err := b.peers(ctx, b.home(j), ws[j], "format=bootnodes", "")
		st[j] = a
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var all, same, other []time.Duration
	var maxRTT time.Duration
	for round := range benchRounds {
		answers, postAt, rtt, err := b.watchRound(ctx, ws, st, pop.changes[round])
		if err != nil {
			t.Fatalf("watcher round %d: %v", round+1, err)
		}
		maxRTT = max(maxRTT, rtt)
		for j, a := range answers {
			lat := a.done.Sub(postAt)
			all = append(all, lat)
			if j%n == 0 {
				same = append(same, lat)
			} else {
				other = append(other, lat)
			}
		}
		st = answers
	}
	d = summarise(all)
	res.add("Watchers", fmt.Sprintf("one change -> %d watchers (JSON answers), answer fully read, p99 (p50, max) [%d rounds]", len(ws), benchRounds),
		"%s (p50 %s, max %s)", ms(d.p99), ms(d.p50), ms(d.max))
	if n > 1 {
		dSame, dOther := summarise(same), summarise(other)
		res.add("Watchers", "  p99 (p50): watchers on the writing replica / on the other replicas",
			"%s (%s) / %s (%s)", ms(dSame.p99), ms(dSame.p50), ms(dOther.p99), ms(dOther.p50))
	} else {
		res.add("Watchers", "  p99 (p50): watchers on the writing replica / on the other replicas", "%s (%s) / none", ms(d.p99), ms(d.p50))
	}
	res.add("Watchers", "the change's own POST round trip (max)", "%s", ms(maxRTT))

	// New registrations, 10,000 present.
	lat, el, err = runConcurrent(benchWorkers, len(pop.fresh), func(i int) error {
		return b.post(ctx, b.home(i), "/v1/nodes", pop.fresh[i], pop.fresh[i].body, http.StatusCreated)
	})
	if err != nil {
		t.Fatalf("new registrations: %v", err)
	}
	d = summarise(lat)
	res.add("Registrations", "new registrations/s (64 clients, 3000 new nodes, 10,000 present)", "%.0f/s (p50 %s, p99 %s)", float64(len(pop.fresh))/el.Seconds(), ms(d.p50), ms(d.p99))

	var rss, hwm []string
	for _, r := range rs {
		pid := r.p.cmd.Process.Pid
		rss = append(rss, fmt.Sprintf("%.0f", rssMB(pid, "VmRSS")))
		hwm = append(hwm, fmt.Sprintf("%.0f", rssMB(pid, "VmHWM")))
	}
	res.add("RSS", "registrar RSS at the end, per replica (peak), MB", "%s (%s)", strings.Join(rss, ", "), strings.Join(hwm, ", "))
	if len(etcdPIDs) > 0 {
		var ers []string
		for _, pid := range etcdPIDs {
			ers = append(ers, fmt.Sprintf("%.0f", rssMB(pid, "VmRSS")))
		}
		res.add("RSS", "etcd member RSS at the end, MB", "%s", strings.Join(ers, ", "))
	} else {
		res.add("RSS", "etcd member RSS at the end, MB", "n/a")
	}
	res.add("machine", "load average (1 min) when the run ended", "%s", loadavg())
	for _, row := range res.rows {
		t.Logf("%s | %s | %s", row.bench, row.metric, row.value)
	}
	return res
}

// watchRound parks one blocking query per watcher on its home replica
// (index + If-None-Match, wait 60 s, JSON), waits until the replicas count
// them all as waiting, registers change through the first replica and
// collects every answer.
func (b *benchTarget) watchRound(ctx context.Context, ws []bspec, st []answer, change bspec) ([]answer, time.Time, time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	out := make([]answer, len(ws))
	errc := make(chan error, len(ws))
	var wg sync.WaitGroup
	for j := range ws {
		wg.Go(func() {
			q := "index=" + strconv.FormatUint(st[j].index, 10) + "&wait=60s"
			a, err := b.peers(rctx, b.home(j), ws[j], q, st[j].etag)
			if err == nil && (a.status != http.StatusOK || a.etag == st[j].etag) {
				err = fmt.Errorf("watcher %s: HTTP %d, ETag %s (was %s): want 200 with a new set", ws[j].id[:8], a.status, a.etag, st[j].etag)
			}
			if err != nil {
				errc <- err
				cancel()
				return
			}
			out[j] = a
		})
	}
	fail := func(err error) ([]answer, time.Time, time.Duration, error) {
		cancel()
		wg.Wait()
		return nil, time.Time{}, 0, err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		n, err := b.parked(rctx)
		if err != nil {
			return fail(err)
		}
		if n >= len(ws) {
			break
		}
		select {
		case err := <-errc:
			return fail(err)
		default:
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("only %d of %d watchers parked after a minute", n, len(ws)))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A watcher the gauge counts may still be taking its change channel.
	time.Sleep(200 * time.Millisecond)
	postAt := time.Now()
	if err := b.post(rctx, b.rs[0].url(), "/v1/nodes", change, change.body, http.StatusCreated); err != nil {
		return fail(err)
	}
	rtt := time.Since(postAt)
	wg.Wait()
	select {
	case err := <-errc:
		return nil, time.Time{}, 0, err
	default:
	}
	return out, postAt, rtt, nil
}

// converged waits until every replica lists n live nodes and says how long
// that took (a replica applies the others' writes from etcd's watch).
func (b *benchTarget) converged(t *testing.T, admin string, n int) string {
	start := time.Now()
	for _, r := range b.rs {
		var live int
		if !waitFor(2*time.Minute, func() bool {
			_, body, err := get(r.url()+"/v1/nodes", admin)
			live = bytes.Count(body, []byte(`"live":true`))
			return err == nil && live >= n
		}) {
			t.Fatalf("%s lists %d live nodes of %d two minutes after the registrations", r.name, live, n)
		}
	}
	return ms(time.Since(start))
}

// sameSet waits until every replica answers s's set with one ETag and says
// how long that took.
func (b *benchTarget) sameSet(t *testing.T, s bspec) string {
	start := time.Now()
	var etags []string
	if !waitFor(2*time.Minute, func() bool {
		etags = etags[:0]
		for _, r := range b.rs {
			a, err := b.peers(context.Background(), r.url(), s, "format=bootnodes", "")
			if err != nil {
				return false
			}
			etags = append(etags, a.etag)
		}
		return !slices.ContainsFunc(etags, func(e string) bool { return e != etags[0] })
	}) {
		t.Fatalf("the replicas still answer different sets two minutes after the renewals: %v", etags)
	}
	return ms(time.Since(start))
}
