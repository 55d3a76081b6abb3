#!/usr/bin/env bash
# deploy/prometheus/test.sh (make promtool-test): checks the alert rules with
# Prometheus' own promtool (Debian's prometheus package):
#   1. promtool check rules alerts.yml: syntax, PromQL, templates;
#   2. promtool test rules alerts_test.yml: each alert fires on the series
#      that should fire it and stays silent on the others;
#   3. every alert is expected to fire somewhere in alerts_test.yml: with the
#      alert renamed, the tests must fail (an alert nobody tests would pass).
set -euo pipefail
cd "$(dirname "$0")"
command -v promtool >/dev/null || {
	echo "promtool-test: promtool is not installed (apt-get install prometheus)" >&2
	exit 1
}
promtool check rules alerts.yml
promtool test rules alerts_test.yml

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp alerts_test.yml "$tmp/"
alerts=$(sed -n 's/^ *- alert: *\([A-Za-z0-9_]*\) *$/\1/p' alerts.yml)
n=0
for a in $alerts; do
	sed "s/^\( *- alert: *\)$a *\$/\1${a}Untested/" alerts.yml >"$tmp/alerts.yml"
	if promtool test rules "$tmp/alerts_test.yml" >/dev/null 2>&1; then
		echo "promtool-test: no test in alerts_test.yml expects $a to fire" >&2
		exit 1
	fi
	n=$((n + 1))
done
echo "promtool-test: $n alerts, each fires in alerts_test.yml" >&2
