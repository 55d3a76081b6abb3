#!/usr/bin/env bash
# deploy/build-images.sh: build the consortium and geth images, with no
# registry at all.
#
#   deploy/build-images.sh            build both images (cached), print their sizes
#   deploy/build-images.sh --print    print the image names only (for scripts)
#
# Why this shape: a builder stage (FROM golang) would need an image pull, and
# this project's machines reach no image registry. So the static binaries are
# compiled on the host with the Go toolchain (which reaches only the Go module
# proxy) and COPYed into images FROM scratch, which need no pull.
#
# Caching: the consortium binary goes through Go's build cache (seconds when
# nothing changed); the static geth is built once into
# $CONSORTIUM_CACHE/geth-$GETH_VERSION-static/geth; docker's layer cache
# skips a COPY whose file did not change. A second run rebuilds nothing.
#
# Environment:
#   CONSORTIUM_IMAGE   default consortium/consortium:dev
#   GETH_IMAGE         default consortium/geth:$GETH_VERSION
#   GETH_VERSION       default v1.13.15 (the last geth that seals Clique blocks)
#   CONSORTIUM_CACHE   default ~/.cache/consortium
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
GETH_VERSION=${GETH_VERSION:-v1.13.15}
CONSORTIUM_IMAGE=${CONSORTIUM_IMAGE:-consortium/consortium:dev}
GETH_IMAGE=${GETH_IMAGE:-consortium/geth:$GETH_VERSION}
cache=${CONSORTIUM_CACHE:-$HOME/.cache/consortium}

if [ "${1:-}" = "--print" ]; then
	echo "$CONSORTIUM_IMAGE"
	echo "$GETH_IMAGE"
	exit 0
fi

command -v go >/dev/null || { echo "build-images: go is not on PATH" >&2; exit 1; }
command -v docker >/dev/null || { echo "build-images: docker is not on PATH" >&2; exit 1; }

# The docker CLI >= 23 builds with BuildKit, which needs the buildx plugin;
# without it, use the classic builder (it handles FROM scratch and
# multi-stage files alike).
if [ -z "${DOCKER_BUILDKIT:-}" ] && ! docker buildx version >/dev/null 2>&1; then
	export DOCKER_BUILDKIT=0
fi

stage=$(mktemp -d "${TMPDIR:-/tmp}/consortium-images.XXXXXX")
trap 'rm -rf "$stage"' EXIT

# rootfs: the few files a scratch image needs for a non-root user. Modes
# and empty directories are made here because git keeps neither.
make_rootfs() {
	local ctx=$1
	mkdir -p "$ctx/rootfs/tmp" "$ctx/rootfs-data"
	cp -R "$root/deploy/docker/rootfs/." "$ctx/rootfs/"
	chmod 0644 "$ctx/rootfs/etc/passwd" "$ctx/rootfs/etc/group" "$ctx/rootfs/etc/nsswitch.conf"
	chmod 1777 "$ctx/rootfs/tmp"
	chmod 0700 "$ctx/rootfs-data"
	# A fixed time on everything copied, so docker's cache sees the same
	# context on every run.
	find "$ctx/rootfs" "$ctx/rootfs-data" -exec touch -h -d @0 {} +
}

# --- consortium ------------------------------------------------------------
version=$(git -C "$root" describe --always --dirty 2>/dev/null || echo dev)
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
ctx=$stage/consortium
mkdir -p "$ctx"
make_rootfs "$ctx"
echo "build-images: compiling consortium ($version), static" >&2
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$version" \
	-o "$ctx/consortium" ./cmd/consortium)
touch -d @0 "$ctx/consortium"

# The image's HEALTHCHECK runs `consortium healthcheck`; a binary without
# that command gets the liveness-only fallback target instead.
target=healthcheck
probe=$("$ctx/consortium" healthcheck --help 2>&1 || true)
if [[ $probe == *"unknown command"* ]]; then
	target=liveness
	echo "build-images: WARNING: this consortium has no 'healthcheck' command; the image's HEALTHCHECK only runs 'consortium version'" >&2
fi
cp "$root/deploy/docker/consortium.Dockerfile" "$ctx/Dockerfile"
build() { # docker build, quiet unless it fails (the classic builder's deprecation notice is noise here)
	docker build "$@" >"$stage/build.log" 2>&1 || { cat "$stage/build.log" >&2; exit 1; }
}
build --target "$target" --build-arg "VERSION=$version" --build-arg "REVISION=$revision" \
	-t "$CONSORTIUM_IMAGE" "$ctx"

# --- geth ------------------------------------------------------------------
# Built like scripts/build-geth.sh builds its (dynamic) binaries, plus
# CGO_ENABLED=0 so that it runs on an empty root file system, and -s -w to
# leave debug information out of the image. -checklinkname=0: geth < 1.14
# links an old dependency through a go:linkname that Go >= 1.23 refuses.
gethdir=$cache/geth-$GETH_VERSION-static
geth=$gethdir/geth
if [ ! -x "$geth" ]; then
	mkdir -p "$gethdir"
	exec 9>"$gethdir/.lock"
	command -v flock >/dev/null && flock 9
	if [ ! -x "$geth" ]; then
		ldflags="-s -w"
		case $GETH_VERSION in
		v1.1[0-3].*) ldflags="$ldflags -checklinkname=0" ;;
		esac
		tmp=$(mktemp -d "$gethdir/.build.XXXXXX")
		echo "build-images: building static geth $GETH_VERSION (a few minutes, once)" >&2
		(cd "$tmp" && CGO_ENABLED=0 GOBIN="$tmp" GOFLAGS="" go install -trimpath -ldflags="$ldflags" \
			"github.com/ethereum/go-ethereum/cmd/geth@$GETH_VERSION") >&2
		"$tmp/geth" version >/dev/null
		mv "$tmp/geth" "$geth"
		rm -rf "$tmp"
	fi
	exec 9>&-
fi
ctx=$stage/geth
mkdir -p "$ctx"
make_rootfs "$ctx"
cp "$geth" "$ctx/geth"
touch -d @0 "$ctx/geth"
cp "$root/deploy/docker/geth.Dockerfile" "$ctx/Dockerfile"
build --build-arg "VERSION=$GETH_VERSION" -t "$GETH_IMAGE" "$ctx"

# --- sizes -----------------------------------------------------------------
for img in "$CONSORTIUM_IMAGE" "$GETH_IMAGE"; do
	size=$(docker image inspect -f '{{.Size}}' "$img")
	printf '%-36s %6.1f MB\n' "$img" "$(echo "$size" | awk '{print $1/1000000}')"
done
