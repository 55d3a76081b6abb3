package consensus

import (
	"errors"

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
	// A restarted Node (a new one on the same Registerer) takes over the
	// collectors of the one before it, so counters stay monotonic.
	var err error
	if m.height, err = register(reg, m.height); err != nil {
		return nil, err
	}
	if m.round, err = register(reg, m.round); err != nil {
		return nil, err
	}
	if m.roundsPerBlock, err = register(reg, m.roundsPerBlock); err != nil {
		return nil, err
	}
	if m.blockInterval, err = register(reg, m.blockInterval); err != nil {
		return nil, err
	}
	if m.missedSignatures, err = register(reg, m.missedSignatures); err != nil {
		return nil, err
	}
	if m.proposalsRefused, err = register(reg, m.proposalsRefused); err != nil {
		return nil, err
	}
	if m.buildFailures, err = register(reg, m.buildFailures); err != nil {
		return nil, err
	}
	if m.engineErrors, err = register(reg, m.engineErrors); err != nil {
		return nil, err
	}
	if m.peers, err = register(reg, m.peers); err != nil {
		return nil, err
	}
	if m.peersRefused, err = register(reg, m.peersRefused); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector of the same kind that is
// already registered under its name.
func register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, err
}
