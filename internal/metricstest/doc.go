// Package metricstest holds the tests that tie the metrics to their
// documentation (docs/dashboard.md): every metric the registrar, the agent
// and the bootnode export is documented there and every documented one
// exists, and each documented registrar and agent metric is present on
// /metrics and moves when the event it counts happens. It has no code of
// its own, only tests.
package metricstest
