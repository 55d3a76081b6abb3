package agent

import "github.com/prometheus/client_golang/prometheus"

// Metric names are documented in docs/dashboard.md.
type metrics struct {
	actions       *prometheus.CounterVec
	registrations *prometheus.CounterVec
	renewals      *prometheus.CounterVec
	setChanges    prometheus.Counter
	desired       prometheus.Gauge
	connected     prometheus.Gauge
	registrarUp   prometheus.Gauge
	clientUp      prometheus.Gauge
	leaseExpires  prometheus.Gauge
	sealStarts    prometheus.Counter
	stallKicks    prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consortium_agent_reconcile_actions_total", Help: "Admin RPC calls made to reconcile peers, by kind.",
		}, []string{"kind"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consortium_agent_registrations_total", Help: "Registrations sent, by result.",
		}, []string{"result"}),
		renewals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consortium_agent_renewals_total", Help: "Lease renewals sent, by result (ok, error, lapsed).",
		}, []string{"result"}),
		setChanges:   prometheus.NewCounter(prometheus.CounterOpts{Name: "consortium_agent_peer_set_changes_total", Help: "New peer sets received from the registrar."}),
		desired:      prometheus.NewGauge(prometheus.GaugeOpts{Name: "consortium_agent_peers_desired", Help: "Peers in the registrar's answer."}),
		connected:    prometheus.NewGauge(prometheus.GaugeOpts{Name: "consortium_agent_peers_connected", Help: "Peers the client reports connected."}),
		registrarUp:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "consortium_agent_registrar_up", Help: "1 when the last registrar call got an answer."}),
		clientUp:     prometheus.NewGauge(prometheus.GaugeOpts{Name: "consortium_agent_client_up", Help: "1 when the client's admin RPC answers."}),
		leaseExpires: prometheus.NewGauge(prometheus.GaugeOpts{Name: "consortium_agent_lease_expires_timestamp_seconds", Help: "When the node's lease runs out (Unix time)."}),
		sealStarts:   prometheus.NewCounter(prometheus.CounterOpts{Name: "consortium_agent_seal_starts_total", Help: "Times the agent started its signer's miner (--seal)."}),
		stallKicks:   prometheus.NewCounter(prometheus.CounterOpts{Name: "consortium_agent_stall_reconnects_total", Help: "Times the node's head was stuck while a peer reported a higher one, and the agent reconnected that peer."}),
	}
	if reg != nil {
		reg.MustRegister(m.actions, m.registrations, m.renewals, m.setChanges, m.desired, m.connected, m.registrarUp, m.clientUp, m.leaseExpires, m.sealStarts, m.stallKicks)
	}
	return m
}
