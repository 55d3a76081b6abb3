package consensus

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the consensus figures an operator watches: is the chain
// moving, how many rounds a height takes, which validator misses its
// signatures. They are registered on Config.Registerer only, never on the
// global registry, so several nodes can run in one process (tests,
// devnet). CometBFT's own metrics are not exported: its constructors
// register on the global registry, which would collide between nodes.
type metrics struct {
	height           prometheus.Gauge
	round            prometheus.Gauge
	roundsPerBlock   prometheus.Histogram
	blockInterval    prometheus.Histogram
	missedSignatures *prometheus.CounterVec
	proposalsRefused *prometheus.CounterVec
	buildFailures    prometheus.Counter
	engineErrors     prometheus.Counter
	peers            prometheus.Gauge
	peersRefused     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		height: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "consortium_consensus_height", Help: "Last final height (equals the EL block number).",
		}),
		round: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "consortium_consensus_round", Help: "Current consensus round at the height being decided (0 when all is well).",
		}),
		roundsPerBlock: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "consortium_consensus_rounds_per_block", Help: "Rounds it took to decide a height (1 when the first proposer succeeded).",
			Buckets: []float64{1, 2, 3, 5, 10},
		}),
		blockInterval: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "consortium_consensus_block_interval_seconds", Help: "Time between consecutive final blocks (CometBFT block times).",
			Buckets: []float64{0.5, 1, 1.5, 2, 3, 5, 10, 30},
		}),
		missedSignatures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consortium_consensus_missed_signatures_total", Help: "Commits a validator did not sign, by validator address.",
		}, []string{"validator"}),
		proposalsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "consortium_consensus_proposals_refused_total", Help: "Proposals this node refused in ProcessProposal, by the rule broken.",
		}, []string{"reason"}),
		buildFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "consortium_consensus_build_failures_total", Help: "Proposals this node could not fill with a payload from geth.",
		}),
		engineErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "consortium_consensus_engine_retries_total", Help: "Failed attempts to import a final block into geth (retried).",
		}),
		peers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "consortium_consensus_peers", Help: "Connected CometBFT peers.",
		}),
		peersRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "consortium_consensus_peers_refused_total", Help: "Peer handshakes refused because the node ID is outside the peer set.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.height, m.round, m.roundsPerBlock, m.blockInterval, m.missedSignatures,
		m.proposalsRefused, m.buildFailures, m.engineErrors, m.peers, m.peersRefused,
	} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
