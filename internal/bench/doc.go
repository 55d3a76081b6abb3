// Package bench holds the registrar's performance benchmarks (bench_test.go):
// renewals, registrations, peer-set reads, blocking-query fan-out and the
// registrar's memory, against the real SQLite store and real HTTP on
// 127.0.0.1. Run them with `make bench`. They run the registrar in the test
// process, without its memory limit and its dashboard: use them to profile.
// The figures that count are realbin_test.go's (`make bench-real`): the real
// `consortium registrar` binary in its own process, driven from this one;
// docs/benchmarks.md records them.
//
// The package has no code of its own: this file only documents it. The load
// generator the benchmarks drive (the population of signed records, the
// agents' requests, the watcher rounds) is internal/bench/load, shared with
// the HA benchmark of internal/hatest.
package bench
