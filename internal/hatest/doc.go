// Package hatest holds the tests of the highly available registrar (issue
// 6) against real processes: a three-member etcd cluster run as `consortium
// etcd` processes, three `consortium registrar --store etcd://...` replicas,
// and up to a thousand simulated agents in the test process that register,
// renew and keep a blocking peer-set query open through registrarclient
// with all three replicas' URLs.
//
// The tests kill replicas and etcd members with SIGKILL and check what the
// issue promises: no lease lost, every watcher resumed on another replica
// within 2 s, no acknowledged write missing, 503 with a clear body when etcd
// has no quorum, and everything back after the replicas restart.
//
// bench_test.go repeats the registrar benchmark of internal/bench on etcd
// with three replicas beside SQLite with one (HA_BENCH=1).
//
// The package has no code of its own: this file only documents it.
package hatest
