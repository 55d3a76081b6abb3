package httpapi

import (
	"strconv"
	"time"

	"github.com/consortium/consortium/internal/registry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metric names are documented in docs/dashboard.md.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	watchers prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry, r *registry.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consortium_registrar_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "consortium_registrar_http_request_duration_seconds", Help: "HTTP request latency by route (blocking queries included).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1, 5, 30, 300},
		}, []string{"route"}),
		watchers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "consortium_registrar_watchers", Help: "Blocking peer-set queries waiting right now.",
		}),
	}
	st := r.Stats()
	counter := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f()) })
	}
	reg.MustRegister(m.requests, m.duration, m.watchers,
		counter("consortium_registrar_registrations_total", "Node registrations accepted.", st.Registrations.Load),
		counter("consortium_registrar_registrations_refused_total", "Node registrations refused (bad record, stale seq, wrong owner).", st.RegistrationsRefused.Load),
		counter("consortium_registrar_renewals_total", "Lease renewals accepted.", st.Renewals.Load),
		counter("consortium_registrar_expiries_total", "Leases that ran out.", st.Expiries.Load),
		counter("consortium_registrar_peer_cache_hits_total", "Peer-set answers served from the cache.", st.PeerCacheHits.Load),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "consortium_registrar_index", Help: "Current change index."}, func() float64 { return float64(r.Index()) }),
		&nodeCollector{r: r},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

var nodesDesc = prometheus.NewDesc("consortium_registrar_nodes", "Registered nodes by member, role and state (live or lapsed).", []string{"member", "role", "state"}, nil)

type nodeCollector struct{ r *registry.Registry }

func (c *nodeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- nodesDesc }

func (c *nodeCollector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.r.NodeCounts() {
		state := "lapsed"
		if g.Live {
			state = "live"
		}
		ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(g.Count), g.Member, g.Role, state)
	}
}
