#!/usr/bin/env bash
# deploy/compose/down.sh [--purge]: stop the reference consortium and remove
# its containers, networks and volumes (the chain data and the registrar's
# database; for a BFT consortium also the CometBFT state in the init
# output). The init output in $CONSORTIUM_DIR (keys, genesis, credentials,
# TLS) is kept, so the next up.sh starts the same consortium afresh;
# --purge deletes it too.
#
# Works from docker's labels alone, so it also cleans up a consortium whose
# compose environment is gone or broken. Environment: CONSORTIUM_DIR,
# COMPOSE_PROJECT_NAME (as for up.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
default_dir=$here/.consortium
CONSORTIUM_DIR=${CONSORTIUM_DIR:-$default_dir}
project=${COMPOSE_PROJECT_NAME:-consortium}
purge=false
case ${1:-} in
"") ;;
--purge) purge=true ;;
*) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

label=com.docker.compose.project=$project
mapfile -t containers < <(docker ps -aq --filter "label=$label")
if [ ${#containers[@]} -gt 0 ]; then
	# geth gets its stop grace period to close its database cleanly.
	docker stop -t 30 "${containers[@]}" >/dev/null
	docker rm -f -v "${containers[@]}" >/dev/null
fi
mapfile -t networks < <(docker network ls -q --filter "label=$label")
for n in "${networks[@]}"; do
	if ! err=$(docker network rm "$n" 2>&1 >/dev/null); then
		# The engine can keep a stale endpoint on a network after its
		# container is gone ("has active endpoints" with no container
		# attached); only a restart of the daemon clears it. Say so and go
		# on: everything else of the project is removed.
		if [[ $err == *"active endpoints"* ]] && [ -z "$(docker network inspect -f '{{range .Containers}}x{{end}}' "$n" 2>/dev/null)" ]; then
			echo "down.sh: docker kept network $(docker network inspect -f '{{.Name}}' "$n") with a stale endpoint and no container (a Docker engine fault; restart the daemon to remove it)" >&2
			continue
		fi
		echo "$err" >&2
		exit 1
	fi
done
mapfile -t volumes < <(docker volume ls -q --filter "label=$label")
[ ${#volumes[@]} -eq 0 ] || docker volume rm "${volumes[@]}" >/dev/null
echo "down.sh: removed ${#containers[@]} containers, ${#networks[@]} networks, ${#volumes[@]} volumes of \"$project\"" >&2

# A BFT consortium's consensus processes keep their CometBFT state (block
# store, the validators' signing state) in the init output's cometbft
# directories, beside their keys: it goes with the chain's volumes, so the
# next up.sh starts the chain afresh (a signing state left at height N would
# keep a validator from signing the new chain's first N heights).
if [ -d "$CONSORTIUM_DIR/members" ]; then
	n=0
	for d in "$CONSORTIUM_DIR"/members/*/*/cometbft/data; do
		[ -d "$d" ] || continue
		if ! find "$d" -mindepth 1 -delete || ! rm -f "$(dirname "$d")/config/addrbook.json"; then
			echo "down.sh: cannot reset $d (owned by the containers' user 65532): run down.sh as root" >&2
			exit 1
		fi
		n=$((n + 1))
	done
	[ "$n" = 0 ] || echo "down.sh: reset the CometBFT state of $n nodes (keys kept)" >&2
fi

if $purge; then
	rm -rf "$CONSORTIUM_DIR"
	[ "$CONSORTIUM_DIR" != "$default_dir" ] || rm -f "$here/.env"
	echo "down.sh: deleted $CONSORTIUM_DIR (keys, genesis, credentials)" >&2
fi
