package hatest

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/consortium/consortium/internal/bench/load"
	"github.com/consortium/consortium/internal/testutil"
)

// runBench starts the registrars of one column (kind "sqlite": one replica
// on SQLite; "etcd": three replicas on a three-member etcd cluster) and
// takes every figure of the table.
func runBench(t *testing.T, kind string, pop *load.Population) benchResult {
	ps := newProcs(t)
	sd := writeSeed(t, pop.Members...)
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
			etcdPIDs = append(etcdPIDs, m.p.Pid())
		}
		rs = startReplicas(t, ps, 3, ec.storeURL(), sd, extra...)
	}
	// Node k is served by its home replica, b.Home(k); the watcher rounds
	// register their change through the first replica.
	b := &load.Target{HC: load.NewHTTPClient(), Admin: sd.admin, Creds: sd.members}
	for _, r := range rs {
		b.URLs = append(b.URLs, r.url())
	}
	ctx := context.Background()
	n := len(rs)
	res.add("machine", "load average (1 min) when the run began", "%s", loadavg())
	memLimit := replicaMemLimit + " (set by the suite, as docs/ha.md advises for replicas)"
	if v := os.Getenv("GOMEMLIMIT"); v != "" {
		memLimit = v + " (from the environment)"
	}
	res.add("machine", "registrar GOMEMLIMIT", "%s", memLimit)

	// Setup: the 10,000 nodes, each through its home replica.
	_, el, err := load.RunConcurrent(benchWorkers, len(pop.Nodes), func(i int) error {
		return b.Register(ctx, b.Home(i), pop.Nodes[i])
	})
	if err != nil {
		t.Fatalf("registering the setup nodes: %v", err)
	}
	res.add("setup", "register 10,000 nodes into an empty store (64 clients)", "%s (%.0f/s)", el.Round(time.Millisecond), float64(len(pop.Nodes))/el.Seconds())
	res.add("setup", "every replica lists the 10,000 nodes, after the last registration's answer", "%s", converged(t, rs, sd.admin, len(pop.Nodes)))

	// Renewals: each node through its home replica.
	const renewals = 50000
	lat, el, err := load.RunConcurrent(benchWorkers, renewals, func(i int) error {
		k := i % len(pop.Nodes)
		return b.Renew(ctx, b.Home(k), pop.Nodes[k])
	})
	if err != nil {
		t.Fatalf("renewals: %v", err)
	}
	d := summarise(lat)
	res.add("Renewals", "renewals/s (64 clients, 50,000 renewals)", "%.0f/s", renewals/el.Seconds())
	res.add("Renewals", "renewal latency p99 (p50)", "%s (p50 %s)", ms(d.p99), ms(d.p50))
	target := pop.Nodes[pop.Target]
	res.add("Renewals", "every replica answers the same ~8,000-peer set, after the last renewal's answer", "%s", sameSet(t, b, rs, target))

	// Peer-set reads of the ~8,000-peer node, spread over the replicas.
	t0 := time.Now()
	first, err := b.Peers(ctx, rs[0].url(), target, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	res.add("PeerSetReads", "read uncached (the first after a change)", "%s (%.2f MiB)", ms(time.Since(t0)), float64(first.Bytes)/(1<<20))
	for _, r := range rs[1:] {
		a, err := b.Peers(ctx, r.url(), target, "", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.ETag != first.ETag || a.Bytes != first.Bytes {
			t.Errorf("%s answers the target's set with ETag %s (%d bytes), %s with %s (%d bytes)", r.name, a.ETag, a.Bytes, rs[0].name, first.ETag, first.Bytes)
		}
	}
	const fullReads, notMod = 2000, 20000
	lat, el, err = load.RunConcurrent(16, fullReads, func(i int) error {
		a, err := b.Peers(ctx, b.Home(i), target, "", "", nil)
		if err == nil && (a.Status != http.StatusOK || a.Bytes != first.Bytes) {
			err = fmt.Errorf("full read: HTTP %d, %d bytes", a.Status, a.Bytes)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	d = summarise(lat)
	res.add("PeerSetReads", "peer-set reads/s, cached, full 200 JSON (16 clients, 2000 reads)", "%.0f/s (p99 %s)", fullReads/el.Seconds(), ms(d.p99))
	lat, el, err = load.RunConcurrent(16, notMod, func(i int) error {
		a, err := b.Peers(ctx, b.Home(i), target, "", first.ETag, nil)
		if err == nil && a.Status != http.StatusNotModified {
			err = fmt.Errorf("conditional read: HTTP %d", a.Status)
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
	ws := pop.WatcherSpecs()
	st, err := b.PrimeWatchers(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	var all, same, other []time.Duration
	var maxRTT time.Duration
	for round := range benchRounds {
		rd, err := b.WatchRound(ctx, ws, st, pop.Changes[round], "")
		if err != nil {
			t.Fatalf("watcher round %d: %v", round+1, err)
		}
		maxRTT = max(maxRTT, rd.PostRTT)
		for j, a := range rd.Answers {
			lat := a.Done.Sub(rd.PostAt)
			all = append(all, lat)
			if j%n == 0 {
				same = append(same, lat)
			} else {
				other = append(other, lat)
			}
		}
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
	lat, el, err = load.RunConcurrent(benchWorkers, len(pop.Fresh), func(i int) error {
		return b.Post(ctx, b.Home(i), "/v1/nodes", pop.Fresh[i], pop.Fresh[i].Body, http.StatusCreated)
	})
	if err != nil {
		t.Fatalf("new registrations: %v", err)
	}
	d = summarise(lat)
	res.add("Registrations", "new registrations/s (64 clients, 3000 new nodes, 10,000 present)", "%.0f/s (p50 %s, p99 %s)", float64(len(pop.Fresh))/el.Seconds(), ms(d.p50), ms(d.p99))

	var rss, hwm []string
	for _, r := range rs {
		now, peak := load.ProcMem(r.p.Pid())
		rss = append(rss, fmt.Sprintf("%.0f", now))
		hwm = append(hwm, fmt.Sprintf("%.0f", peak))
	}
	res.add("RSS", "registrar RSS at the end, per replica (peak), MB", "%s (%s)", strings.Join(rss, ", "), strings.Join(hwm, ", "))
	if len(etcdPIDs) > 0 {
		var ers []string
		for _, pid := range etcdPIDs {
			now, _ := load.ProcMem(pid)
			ers = append(ers, fmt.Sprintf("%.0f", now))
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

// converged waits until every replica lists n live nodes and says how long
// that took (a replica applies the others' writes from etcd's watch).
func converged(t *testing.T, rs []*replica, admin string, n int) string {
	start := time.Now()
	for _, r := range rs {
		testutil.Eventually(t, 2*time.Minute, r.name+" listing every registration live", func() error {
			return listsLive(r, admin, n)
		})
	}
	return ms(time.Since(start))
}

// sameSet waits until every replica answers s's set with one ETag and says
// how long that took.
func sameSet(t *testing.T, b *load.Target, rs []*replica, s load.Spec) string {
	start := time.Now()
	testutil.Eventually(t, 2*time.Minute, "the replicas answering one set after the renewals", func() error {
		var etags []string
		for _, r := range rs {
			a, err := b.Peers(context.Background(), r.url(), s, "format=bootnodes", "", nil)
			if err != nil {
				return fmt.Errorf("%s: %w", r.name, err)
			}
			etags = append(etags, a.ETag)
		}
		if slices.ContainsFunc(etags, func(e string) bool { return e != etags[0] }) {
			return fmt.Errorf("ETags %v", etags)
		}
		return nil
	})
	return ms(time.Since(start))
}
