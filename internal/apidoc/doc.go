// Package apidoc holds no code: its test runs every curl example of
// docs/api.md against a real registrar (SQLite store, HTTP on loopback) and
// compares each example's output with the expectation written below it in
// the doc, so the API reference cannot drift from the code. The conventions
// a doc example must follow are described at the top of apidoc_test.go.
package apidoc
