#!/usr/bin/env bash
# deploy/compose/down.sh [--purge]: stop the reference consortium and remove
# its containers, networks and volumes (the chain data and the registrar's
# database). The init output in $CONSORTIUM_DIR (keys, genesis, credentials,
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
[ ${#networks[@]} -eq 0 ] || docker network rm "${networks[@]}" >/dev/null
mapfile -t volumes < <(docker volume ls -q --filter "label=$label")
[ ${#volumes[@]} -eq 0 ] || docker volume rm "${volumes[@]}" >/dev/null
echo "down.sh: removed ${#containers[@]} containers, ${#networks[@]} networks, ${#volumes[@]} volumes of \"$project\"" >&2

if $purge; then
	rm -rf "$CONSORTIUM_DIR"
	[ "$CONSORTIUM_DIR" != "$default_dir" ] || rm -f "$here/.env"
	echo "down.sh: deleted $CONSORTIUM_DIR (keys, genesis, credentials)" >&2
fi
