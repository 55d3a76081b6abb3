#!/usr/bin/env bash
# deploy/compose/up.sh: start a reference consortium in docker, from
# nothing: the BFT one (four members, geth v1.17.10 driven by CometBFT,
# Prometheus; docker-compose.bft.yml) by default, or with CONSENSUS=clique
# the legacy Clique one (three members, geth v1.13.15; docker-compose.yml):
#
#   1. builds the images (deploy/build-images.sh; cached, no registry);
#   2. if $CONSORTIUM_DIR (default deploy/compose/.consortium) holds no
#      consortium yet, runs `consortium init --consensus C --members ...`
#      into it, inside the consortium image;
#   3. makes a CA and a TLS certificate for the registrar (openssl), once;
#   4. writes the compose environment ($CONSORTIUM_DIR/compose.env, and
#      .env beside docker-compose.yml for the default directory): signer
#      addresses and bootnode enode URLs read from consortium.json (jq);
#   5. `docker-compose up -d`.
#
# Tear it down with down.sh. Environment (all optional):
#   CONSORTIUM_DIR        where the init output lives (default ./.consortium)
#   COMPOSE_PROJECT_NAME  default consortium
#   NET                   first two octets of the networks (default 10.201:
#                         10.201.0.0/24 internet, 10.201.{1,2,3}.0/24 members)
#   REGISTRAR_PORT        the registrar's port on the host's loopback (default 19898)
#   TTL                   lease of a node record (default 30s)
#   PERIOD                Clique block period in seconds for a new consortium (default 2)
#   CONSENSUS             bft (default) or clique
#   PROMETHEUS_PORT       bft: Prometheus on the host's loopback (default 19090)
#   A_PUBLIC_IP ...       a public node's address on the internet network
#                         (default $NET.0.11, .12, .13)
#   SKIP_BUILD=1          do not run build-images.sh
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
default_dir=$here/.consortium
CONSORTIUM_DIR=${CONSORTIUM_DIR:-$default_dir}
project=${COMPOSE_PROJECT_NAME:-consortium}
NET=${NET:-10.201}
REGISTRAR_PORT=${REGISTRAR_PORT:-19898}
TTL=${TTL:-30s}
PERIOD=${PERIOD:-2}
CONSENSUS=${CONSENSUS:-bft}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-19090}
case $CONSENSUS in
clique)
	members=(a b c)
	compose_file=$here/docker-compose.yml
	;;
bft)
	members=(a b c d)
	compose_file=$here/docker-compose.bft.yml
	;;
*)
	echo "up.sh: CONSENSUS must be clique or bft (got $CONSENSUS)" >&2
	exit 2
	;;
esac

die() { echo "up.sh: $*" >&2; exit 1; }

for tool in docker jq openssl; do
	command -v "$tool" >/dev/null || die "$tool is not installed (apt-get install $tool)"
done
if command -v docker-compose >/dev/null; then
	compose=(docker-compose)
elif docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
else
	die "neither docker-compose nor 'docker compose' is available"
fi
[[ $NET =~ ^[0-9]{1,3}\.[0-9]{1,3}$ ]] || die "NET must be two octets, like 10.201 (got $NET)"

if [ "${SKIP_BUILD:-}" != 1 ]; then
	"$root/deploy/build-images.sh"
fi
images=$("$root/deploy/build-images.sh" --print)
CONSORTIUM_IMAGE=$(sed -n 1p <<<"$images")
PROMETHEUS_IMAGE=$(sed -n 4p <<<"$images")
if [ "$CONSENSUS" = bft ]; then
	GETH_IMAGE=$(sed -n 3p <<<"$images") # v1.17.10
	docker image inspect "$PROMETHEUS_IMAGE" >/dev/null 2>&1 ||
		die "no image $PROMETHEUS_IMAGE: install Debian's prometheus (apt-get install prometheus) and run deploy/build-images.sh"
else
	GETH_IMAGE=$(sed -n 2p <<<"$images") # v1.13.15, the last geth that seals Clique blocks
fi

# --- 2. consortium init -----------------------------------------------------
mkdir -p "$CONSORTIUM_DIR"
CONSORTIUM_DIR=$(cd "$CONSORTIUM_DIR" && pwd)
if [ ! -f "$CONSORTIUM_DIR/consortium.json" ]; then
	if [ -n "$(ls -A "$CONSORTIUM_DIR")" ]; then
		die "$CONSORTIUM_DIR is not empty but holds no consortium.json: move it away, or run down.sh --purge"
	fi
	echo "up.sh: creating a consortium (members ${members[*]}) in $CONSORTIUM_DIR" >&2
	init_help=$(docker run --rm --network none "$CONSORTIUM_IMAGE" init --help 2>&1 || true)
	if [[ $init_help == *"unknown command"* ]]; then
		die "the image $CONSORTIUM_IMAGE has no 'consortium init' command: rebuild it from a tree that has one, or put the init output in $CONSORTIUM_DIR yourself"
	fi
	init_flags=(--members "$(IFS=,; echo "${members[*]}")" --out /out)
	if [[ $init_help == *"-consensus"* ]]; then
		init_flags+=(--consensus "$CONSENSUS")
	elif [ "$CONSENSUS" = bft ]; then
		die "the image $CONSORTIUM_IMAGE has no 'consortium init --consensus': rebuild it from a tree that makes BFT consortia"
	fi
	[ "$CONSENSUS" = bft ] || init_flags+=(--period "$PERIOD")
	docker run --rm --network none -u "$(id -u):$(id -g)" -v "$CONSORTIUM_DIR:/out" "$CONSORTIUM_IMAGE" \
		init "${init_flags[@]}" >&2
fi
manifest=$CONSORTIUM_DIR/consortium.json
made=$(jq -r '.consensus // "clique"' "$manifest")
[ "$made" = "$CONSENSUS" ] ||
	die "$CONSORTIUM_DIR holds a $made consortium, not $CONSENSUS: set CONSENSUS=$made, or use another CONSORTIUM_DIR"
for m in "${members[@]}"; do
	for role in bootnode validator tx public; do
		[ -d "$CONSORTIUM_DIR/members/$m/$role-1" ] ||
			die "$CONSORTIUM_DIR was made for other members or nodes (no members/$m/$role-1): this compose file runs members ${members[*]} with one node per role; use another CONSORTIUM_DIR"
	done
done

# --- 3. TLS for the registrar ------------------------------------------------
# The members' credentials cross the "internet" network, so the registrar
# serves https. The CA key stays outside tls/, which is what gets mounted.
tls=$CONSORTIUM_DIR/tls
if [ ! -f "$tls/registrar.pem" ] || [ "$(cat "$tls/net" 2>/dev/null)" != "$NET/${#members[@]}" ]; then
	echo "up.sh: making a CA and the registrar's certificate in $tls" >&2
	mkdir -p "$tls"
	chmod 0755 "$tls"
	ca_key=$CONSORTIUM_DIR/tls-ca-key.pem
	[ -f "$ca_key" ] || (umask 077 && openssl ecparam -name prime256v1 -genkey -noout -out "$ca_key")
	openssl req -x509 -new -key "$ca_key" -sha256 -days 3650 -subj "/CN=consortium compose CA" -out "$tls/ca.pem" 2>/dev/null
	(umask 077 && openssl ecparam -name prime256v1 -genkey -noout -out "$tls/registrar-key.pem")
	san="DNS:registrar,DNS:localhost,IP:127.0.0.1,IP:$NET.0.2"
	san="$san,IP:$NET.0.3,IP:$NET.0.4"
	for i in $(seq 1 ${#members[@]}); do san="$san,IP:$NET.$i.2,IP:$NET.$i.3,IP:$NET.$i.4"; done
	ext=$(mktemp)
	printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n' "$san" >"$ext"
	openssl req -new -key "$tls/registrar-key.pem" -subj "/CN=registrar" 2>/dev/null |
		openssl x509 -req -CA "$tls/ca.pem" -CAkey "$ca_key" -CAcreateserial -CAserial "$CONSORTIUM_DIR/tls-ca.srl" \
			-days 825 -sha256 -extfile "$ext" -out "$tls/registrar.pem" 2>/dev/null
	rm -f "$ext"
	echo "$NET/${#members[@]}" >"$tls/net"
fi

# --- 4. the compose environment ---------------------------------------------
node() { # member role field
	jq -r --arg m "$1" --arg r "$2" --arg f "$3" \
		'[.members[] | select(.name == $m) | .nodes[] | select(.role == $r)][0][$f] // empty' "$manifest"
}
env=$CONSORTIUM_DIR/compose.env
{
	echo "# Written by up.sh; read by docker-compose (--env-file, or .env beside the compose file)."
	echo "COMPOSE_PROJECT_NAME=$project"
	echo "NET=$NET"
	echo "CONSORTIUM_DIR=$CONSORTIUM_DIR"
	echo "CONSORTIUM_IMAGE=$CONSORTIUM_IMAGE"
	echo "GETH_IMAGE=$GETH_IMAGE"
	echo "REGISTRAR_PORT=$REGISTRAR_PORT"
	echo "TTL=$TTL"
	echo "CONSENSUS=$CONSENSUS"
	echo "PROMETHEUS_IMAGE=$PROMETHEUS_IMAGE"
	echo "PROMETHEUS_PORT=$PROMETHEUS_PORT"
	i=0
	for m in "${members[@]}"; do
		i=$((i + 1))
		M=$(tr '[:lower:]' '[:upper:]' <<<"$m")
		pub=$(node "$m" bootnode enode_pubkey)
		[ -n "$pub" ] || die "$manifest: member $m has no bootnode"
		pubip_var=${M}_PUBLIC_IP
		if [ "$CONSENSUS" = bft ]; then
			fee=$(jq -r --arg m "$m" '.members[] | select(.name == $m) | .fee_recipient.address // empty' "$manifest")
			[ -n "$fee" ] || die "$manifest: member $m has no fee recipient"
			echo "${M}_FEE_RECIPIENT=$fee"
			# The member's node tree, for its plain geth (no agent).
			tree=$(jq -r --arg m "$m" '.members[] | select(.name == $m) | .discovery_dns // empty' "$manifest")
			[ -n "$tree" ] || die "$manifest: member $m has no discovery_dns (an init without DNS trees: rebuild the image from a tree that has them)"
			echo "${M}_DISCOVERY_DNS=$tree"
		else
			signer=$(node "$m" validator signer)
			[ -n "$signer" ] || die "$manifest: member $m has no signer"
			echo "${M}_SIGNER=$signer"
		fi
		echo "${M}_BOOTNODE=enode://$pub@$NET.$i.10:30301"
		echo "${M}_PUBLIC_IP=${!pubip_var:-$NET.0.$((10 + i))}"
	done
} >"$env"
if [ "$CONSORTIUM_DIR" = "$default_dir" ]; then
	cp "$env" "$here/.env" # so that plain docker-compose ps/logs work in this directory
fi

# The containers run as user 65532 and init wrote the secrets 0600 for the
# user who ran it: hand them over.
if [ "$(id -u)" = 0 ]; then
	chown -R 65532:65532 "$CONSORTIUM_DIR/members" "$CONSORTIUM_DIR/registrar" "$tls"
elif [ "$(stat -c %u "$CONSORTIUM_DIR/registrar/seed.json")" != 65532 ]; then
	die "the containers run as user 65532 and cannot read secrets owned by $(id -un): run up.sh as root (sudo), which hands $CONSORTIUM_DIR/members, registrar and tls to 65532"
fi

# --- 5. up ------------------------------------------------------------------
"${compose[@]}" -p "$project" --env-file "$env" -f "$compose_file" up -d --remove-orphans

cat >&2 <<EOF
up.sh: consortium "$project" is starting.
  registrar:     https://127.0.0.1:$REGISTRAR_PORT  (CA: $tls/ca.pem)
  admin:         CONSORTIUM_CREDENTIAL_FILE=$CONSORTIUM_DIR/registrar/admin.credential
                 consortium member list --registrar https://127.0.0.1:$REGISTRAR_PORT --ca $tls/ca.pem
  with:          dc="${compose[*]} -p $project --env-file $env -f $compose_file"
  a node's peers: \$dc exec a-public$([ "$CONSENSUS" = bft ] && echo -geth) geth attach --exec admin.peers /data/geth.ipc
  an agent's log: \$dc logs -f a-public-agent$([ "$CONSENSUS" = bft ] && printf '\n  Prometheus:    http://127.0.0.1:%s' "$PROMETHEUS_PORT")
  stop:          $here/down.sh
EOF
