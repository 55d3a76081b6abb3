#!/usr/bin/env bash
# build-geth.sh VERSION
#
# Builds geth VERSION (e.g. v1.17.10, v1.13.15) from the Go module proxy into
#   ${CONSORTIUM_CACHE:-$HOME/.cache/consortium}/geth-VERSION/geth
# and prints that path on stdout. When the binary is there already nothing is
# built, so tests and CI can call this unconditionally.
#
# Why the details below:
# - geth is built with `go install module@version`, so the project's own go.mod
#   never has to agree with geth's dependencies.
# - geth older than v1.14 links an old dependency through a go:linkname that
#   Go >= 1.23 refuses; -ldflags=-checklinkname=0 lets it link.
# - The binary is built into a temporary directory and renamed into place, so a
#   half-written file is never mistaken for a finished build, and a lock file
#   keeps two runs of this script for the same version from building at once.
set -euo pipefail

usage() {
	echo "usage: $0 VERSION   (e.g. v1.17.10)" >&2
	exit 2
}

[ $# -eq 1 ] || usage
version=$1
case $version in
v*) ;;
*) version=v$version ;;
esac
if ! [[ $version =~ ^v([0-9]+)\.([0-9]+)\.([0-9]+)$ ]]; then
	echo "build-geth: not a release version: $1" >&2
	usage
fi
major=${BASH_REMATCH[1]}
minor=${BASH_REMATCH[2]}

cache=${CONSORTIUM_CACHE:-$HOME/.cache/consortium}
dir=$cache/geth-$version
bin=$dir/geth

if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

command -v go >/dev/null || { echo "build-geth: go is not on PATH" >&2; exit 1; }
mkdir -p "$dir"

# Serialise builds of one version; the second caller finds the binary after
# the first one finishes.
exec 9>"$dir/.lock"
if command -v flock >/dev/null; then
	flock 9
fi
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi

ldflags=()
if [ "$major" -eq 1 ] && [ "$minor" -lt 14 ]; then
	ldflags=(-ldflags=-checklinkname=0)
fi

tmp=$(mktemp -d "$dir/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "build-geth: building geth $version into $dir (takes a few minutes)" >&2
(cd "$tmp" && GOBIN="$tmp" GOFLAGS= go install "${ldflags[@]}" \
	"github.com/ethereum/go-ethereum/cmd/geth@$version") >&2
mv "$tmp/geth" "$bin"
"$bin" version >/dev/null 2>&1 || { echo "build-geth: $bin does not run" >&2; exit 1; }
echo "$bin"
