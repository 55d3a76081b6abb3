// Package bfttest runs the BFT consortium as its operators run it: the real
// `consortium` binary in its own processes (the registrar, and beside every
// geth its agent with the consensus process, CometBFT, in it) and real geth
// v1.17.10 processes, all on 127.0.0.1. Four members, one validator each
// (equal power, so one may be lost), a public node each that carries geth
// and consensus traffic across members (CometBFT's sentry pattern), and a
// transaction node at member a.
//
// The tests are the chain's promises: the same hash at every height on
// every node and no reorganisation; a transaction final on every node
// within seconds; a lost validator does not pause the chain and catches up
// by itself; two lost halt it without a fork, and it resumes.
//
// Everything runs in test files; this file only names the package so that
// `go vet` sees one.
package bfttest
