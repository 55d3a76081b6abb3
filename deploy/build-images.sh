#!/usr/bin/env bash
# deploy/build-images.sh: build the consortium, geth and Prometheus images,
# with no registry at all.
#
#   deploy/build-images.sh            build them all (cached), print their sizes
#   deploy/build-images.sh --print    print the image names only (for scripts),
#                                     one a line: consortium, geth v1.13.15,
#                                     geth v1.17.10, prometheus
#
# Why this shape: a builder stage (FROM golang) would need an image pull, and
# this project's machines reach no image registry. So the static binaries are
# compiled on the host with the Go toolchain (which reaches only the Go module
# proxy) and COPYed into images FROM scratch, which need no pull. Prometheus
# is Debian's package (apt-get install prometheus): its binary and the shared
# libraries it links (ldd) are copied in the same way.
#
# Caching: the consortium binary goes through Go's build cache (seconds when
# nothing changed); each static geth is built once into
# $CONSORTIUM_CACHE/geth-$VERSION-static/geth; docker's layer cache skips a
# COPY whose file did not change. A second run rebuilds nothing.
#
# Environment:
#   CONSORTIUM_IMAGE   default consortium/consortium:dev
#   GETH_REPOSITORY    default consortium/geth (tagged with each version)
#   GETH_VERSIONS      default "v1.13.15 v1.17.10": the last geth that seals
#                      Clique blocks (the legacy chain) and the newest, which
#                      the BFT chain drives over the Engine API
#   PROMETHEUS_IMAGE   default consortium/prometheus:<Debian's version>;
#                      skipped, with a warning, when prometheus is not installed
#   CONSORTIUM_CACHE   default ~/.cache/consortium
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
GETH_VERSIONS=${GETH_VERSIONS:-v1.13.15 v1.17.10}
GETH_REPOSITORY=${GETH_REPOSITORY:-consortium/geth}
CONSORTIUM_IMAGE=${CONSORTIUM_IMAGE:-consortium/consortium:dev}
cache=${CONSORTIUM_CACHE:-$HOME/.cache/consortium}
prometheus_bin=$(command -v prometheus || true)
if [ -z "${PROMETHEUS_IMAGE:-}" ]; then
	pv=unknown
	if [ -n "$prometheus_bin" ]; then
		pv=$("$prometheus_bin" --version 2>&1 | sed -n 's/^prometheus, version \([^ ]*\).*/\1/p' | tr '+~' '--')
	fi
	PROMETHEUS_IMAGE=consortium/prometheus:${pv:-unknown}
fi

if [ "${1:-}" = "--print" ]; then
	echo "$CONSORTIUM_IMAGE"
	for v in $GETH_VERSIONS; do echo "$GETH_REPOSITORY:$v"; done
	echo "$PROMETHEUS_IMAGE"
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
# consortium-agent: `consortium agent run` alone (internal/agent/agentonly,
# same flags, no consensus process): a fifth of the full binary, and most of
# an agent's RSS is its binary's resident pages. Clique nodes' agents run it;
# BFT nodes' agents need the full binary (--consensus-home).
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
	-o "$ctx/consortium-agent" ./internal/agent/agentonly)
touch -d @0 "$ctx/consortium-agent"
# pause: holds a node's network namespace for its geth and agent in the
# compose consortium (deploy/docker/pause).
(cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ctx/pause" ./deploy/docker/pause)
touch -d @0 "$ctx/pause"

# nft: the agent's opt-in firewall (--firewall nftables) runs it to keep
# strangers off a node's P2P ports; the BFT compose consortium's public
# nodes use it. Debian's binary (apt-get install nftables) with the
# libraries ldd names, as for Prometheus below; without it the image has no
# nft and such an agent logs that its rules were not applied.
mkdir -p "$ctx/nft"
nft_bin=$(command -v nft || true)
if [ -n "$nft_bin" ]; then
	mkdir -p "$ctx/nft/usr/sbin"
	cp "$nft_bin" "$ctx/nft/usr/sbin/nft"
	for lib in $(ldd "$nft_bin" | grep -o '/[^ ]*'); do
		mkdir -p "$ctx/nft$(dirname "$lib")"
		cp -L "$lib" "$ctx/nft$lib"
	done
else
	echo "build-images: WARNING: nft is not installed (apt-get install nftables): the consortium image has no nft, and --firewall nftables will fail in it" >&2
fi
find "$ctx/nft" -exec touch -h -d @0 {} +

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
images=("$CONSORTIUM_IMAGE")
for GETH_VERSION in $GETH_VERSIONS; do
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
	ctx=$stage/geth-$GETH_VERSION
	mkdir -p "$ctx"
	make_rootfs "$ctx"
	cp "$geth" "$ctx/geth"
	touch -d @0 "$ctx/geth"
	cp "$root/deploy/docker/geth.Dockerfile" "$ctx/Dockerfile"
	build --build-arg "VERSION=$GETH_VERSION" -t "$GETH_REPOSITORY:$GETH_VERSION" "$ctx"
	images+=("$GETH_REPOSITORY:$GETH_VERSION")
done

# --- prometheus --------------------------------------------------------------
# Debian's binary is linked against glibc: copy it with every library ldd
# names (and the loader) under the same paths, so it runs on scratch.
if [ -n "$prometheus_bin" ]; then
	ctx=$stage/prometheus
	mkdir -p "$ctx/rootfs/usr/bin" "$ctx/rootfs/etc/prometheus"
	make_rootfs "$ctx"
	cp "$prometheus_bin" "$ctx/rootfs/usr/bin/prometheus"
	for lib in $(ldd "$prometheus_bin" | grep -o '/[^ ]*'); do
		mkdir -p "$ctx/rootfs$(dirname "$lib")"
		cp -L "$lib" "$ctx/rootfs$lib"
	done
	if [ -d /usr/share/prometheus/web ]; then
		mkdir -p "$ctx/rootfs/usr/share/prometheus"
		cp -R /usr/share/prometheus/web "$ctx/rootfs/usr/share/prometheus/"
	fi
	find "$ctx/rootfs" -exec touch -h -d @0 {} +
	cp "$root/deploy/docker/prometheus.Dockerfile" "$ctx/Dockerfile"
	build --build-arg "VERSION=${PROMETHEUS_IMAGE##*:}" -t "$PROMETHEUS_IMAGE" "$ctx"
	images+=("$PROMETHEUS_IMAGE")
else
	echo "build-images: WARNING: prometheus is not installed (apt-get install prometheus): no $PROMETHEUS_IMAGE, which the BFT compose consortium runs" >&2
fi

# --- sizes -----------------------------------------------------------------
for img in "${images[@]}"; do
	size=$(docker image inspect -f '{{.Size}}' "$img")
	printf '%-36s %6.1f MB\n' "$img" "$(echo "$size" | awk '{print $1/1000000}')"
done
