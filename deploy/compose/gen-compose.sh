#!/usr/bin/env bash
# gen-compose.sh: writes the compose files beside this script:
#
#   docker-compose.yml      the legacy Clique consortium: three members,
#                           geth v1.13.15 signers
#   docker-compose.bft.yml  the BFT consortium: four members, geth v1.17.10
#                           driven by a consensus process (CometBFT in the
#                           agent) over the Engine API, and Prometheus
#   prometheus.yml          the BFT consortium's scrape configuration
#
# Each compose file repeats one pattern per node for every member; writing
# them by hand invites copy-paste drift, so they are generated. Edit this
# script, run it, commit what it writes.
set -euo pipefail
cd "$(dirname "$0")"

members=(a b c)
bft_members=(a b c d)
# role, last octet of the private IP
roles=(validator:11 tx:12 public:13)

# Every variable comes from the env file up.sh writes; a plain
# `docker-compose up` without it stops at the first one with this message.
# (No ':' or ',' in it: it lands in YAML flow collections.)
need="no consortium here - run deploy/compose/up.sh (it runs consortium init and writes .env)"
# shellcheck disable=SC2016 # the ${...} is for docker-compose, not for bash
v() { printf '${%s:?%s}' "$1" "$need"; }

NET=$(v NET)
DIR=$(v CONSORTIUM_DIR)

upper() { tr '[:lower:]' '[:upper:]' <<<"$1"; }
# The address a health check inside the node asks: loopback when the
# server listens on every address, else that address.
health_ip() { if [ "$1" = 0.0.0.0 ]; then echo 127.0.0.1; else echo "$1"; fi; }

# The member's agents and bootnode list the three registrar replicas by
# their addresses on the member's network (the certificate names them), and
# move to the next one when one fails. Not the shared name "registrar":
# while a replica is cut off, Docker's DNS forwards lookups it cannot answer
# to the host's resolvers, and on a machine without outside DNS a lookup then
# hangs for seconds at a time (measured: 50 s before c's agents saw the
# registrar again after a cut), while an address fails or answers at once.
reg_flags() { # member index
	printf '%s' "--registrar, \"https://$NET.$1.2:9898,https://$NET.$1.3:9898,https://$NET.$1.4:9898\", --ca, /tls/ca.pem, --credential-file, /member/credential"
}

client_mounts() { # member
	cat <<EOF
      - $DIR/members/$1/credential:/member/credential:ro
      - $DIR/tls/ca.pem:/tls/ca.pem:ro
EOF
}

# registrar_services MODE MEMBER...: the three etcd members and the three
# registrar replicas, the registrars on every member's network.
registrar_services() {
	local mode=$1 peers r svc i m
	shift
	peers=""
	for e in 1 2 3; do peers="$peers${peers:+,}etcd-$e=http://etcd-$e:2380"; done
	for e in 1 2 3; do
		cat <<EOF
  etcd-$e:
    <<: *consortium
    command: [etcd, --name, etcd-$e, --data, /data, --listen-client, "http://0.0.0.0:2379",
      --advertise-client, "http://etcd-$e:2379", --listen-peer, "http://0.0.0.0:2380",
      --advertise-peer, "http://etcd-$e:2380", --initial-cluster, "$peers"]
    healthcheck:
      test: [CMD, /usr/local/bin/consortium, healthcheck, "http://127.0.0.1:2379/health"]
    volumes:
      - etcd-$e:/data
    networks: [registrar-backend]
EOF
	done
	# bft: each replica also serves every member's signed node tree over
	# DNS (issue 23), with the one key consortium init made, to that
	# member's network only.
	local dns="" dns_mount="" allow=""
	if [ "$mode" = bft ]; then
		i=0
		for m in "$@"; do
			i=$((i + 1))
			allow="$allow${allow:+,}$m=$NET.$i.0/24"
		done
		dns=",
      --dns-listen, \":53\", --dns-key, /consortium/dnstree.key, --dns-allow, \"$allow\""
		dns_mount="
      - $DIR/registrar/dnstree.key:/consortium/dnstree.key:ro"
	fi
	for r in 1 2 3; do
		svc=registrar
		[ "$r" = 1 ] || svc=registrar-$r
		cat <<EOF
  $svc:
    <<: *consortium
    command: [registrar, --listen, ":9898", --data, /data, --seed, /consortium/seed.json,
      --store, "etcd://etcd-1:2379,etcd-2:2379,etcd-3:2379",
      --tls-cert, /tls/registrar.pem, --tls-key, /tls/registrar-key.pem, --ttl, "$(v TTL)"$dns]
    environment:
      # Go reads the trusted CAs from here: the health check (and nothing
      # else the registrar does) verifies the registrar's own certificate.
      SSL_CERT_FILE: /tls/ca.pem
      # A replica takes over the agents of one that fails (docs/ha.md).
      GOMEMLIMIT: 256MiB
    healthcheck:
      test: [CMD, /usr/local/bin/consortium, healthcheck, "https://127.0.0.1:9898/healthz"]
    volumes:
      - $svc:/data
      - $DIR/registrar/seed.json:/consortium/seed.json:ro
      - $DIR/tls/ca.pem:/tls/ca.pem:ro
      - $DIR/tls/registrar.pem:/tls/registrar.pem:ro
      - $DIR/tls/registrar-key.pem:/tls/registrar-key.pem:ro$dns_mount
    depends_on: [etcd-1, etcd-2, etcd-3]
EOF
		if [ "$r" = 1 ]; then
			cat <<EOF
    ports:
      - "127.0.0.1:$(v REGISTRAR_PORT):9898"
EOF
		fi
		echo "    networks:"
		if [ "$mode" = bft ]; then
			# Prometheus scrapes each replica by this name.
			echo "      registrar-backend: {aliases: [registrar-$r]}"
		else
			echo "      registrar-backend: {}"
		fi
		echo "      internet: {ipv4_address: \"$NET.0.$((r + 1))\", aliases: [registrar]}"
		i=0
		for m in "$@"; do
			i=$((i + 1))
			echo "      $m: {ipv4_address: \"$NET.$i.$((r + 1))\", aliases: [registrar]}"
		done
		if [ "$r" = 1 ]; then
			cat <<EOF
      # Not internal, so that docker can publish the port on the host's
      # loopback; nothing else joins it.
      registrar-host: {}
EOF
		fi
	done
}

{
	cat <<EOF
# GENERATED by gen-compose.sh: edit that script and run it again.
#
# The reference consortium: three members (a, b, c). Each member has its own
# private network with a bootnode, a signer (validator), a transaction node
# and a public node; each geth runs with its agent beside it. Only the public
# nodes and the consortium registrar join the shared "internet" network.
# The registrar is also on each member's network: that stands for the
# member's outbound way to the consortium registrar (its egress through NAT),
# not for a route between members (containers do not forward packets).
#
# Start and stop it with up.sh and down.sh; they write the .env this file
# needs (keys and genesis from \`consortium init\`, the signer addresses,
# the bootnodes' enode URLs). See docs/deploy.md.

x-consortium: &consortium
  image: $(v CONSORTIUM_IMAGE)
  restart: unless-stopped

x-oneshot: &oneshot
  image: $(v CONSORTIUM_IMAGE)
  restart: "no"
  healthcheck: {disable: true}

x-geth: &geth
  image: $(v GETH_IMAGE)
  restart: unless-stopped
  stop_grace_period: 30s

x-geth-init: &geth-init
  image: $(v GETH_IMAGE)
  restart: "no"
  network_mode: none
  healthcheck: {disable: true}

services:
  # ------------------------------------------------ the consortium registrar
  # Three replicas share one three-member etcd (the etcd members run inside
  # the consortium image: consortium etcd). Each replica carries the alias
  # "registrar" on every network, so docker's DNS answers the name with
  # every running replica; an agent whose replica dies reconnects to another.
EOF
	registrar_services clique "${members[@]}"

	i=0
	for m in "${members[@]}"; do
		i=$((i + 1))
		M=$(upper "$m")
		cat <<EOF

  # ---------------------------------------------------------------- member $m
  $m-bootnode:
    <<: *consortium
    command: [bootnode, --listen, ":30301", --nodekey, /keys/nodekey, --data, /tmp/bootnode,
      --external-ip, "$NET.$i.10", --netrestrict, "$NET.$i.0/24", --http, "127.0.0.1:9900",
      $(reg_flags "$i")]
    healthcheck:
      test: [CMD, /usr/local/bin/consortium, healthcheck, "http://127.0.0.1:9900/healthz"]
    volumes:
      - $DIR/members/$m/bootnode-1:/keys:ro
$(client_mounts "$m")
    networks:
      $m: {ipv4_address: "$NET.$i.10"}
    depends_on: [registrar]
EOF
		for rp in "${roles[@]}"; do
			role=${rp%%:*}
			ip=$NET.$i.${rp##*:}
			svc=$m-$role
			restrict="$NET.$i.0/24"
			# Every geth keeps its keystore in its data volume: agent init
			# puts a relay account there (and copies a signer's key in), and
			# the agent starts and stops the miner with it at each geth start,
			# which makes geth 1.13 import gossiped blocks at once. Signers
			# run WITHOUT --mine: their agent starts sealing (--seal) once the
			# node is peered and at the head (docs/deploy.md, "Sealing").
			extra=", --keystore, /data/keystore"
			init_extra=", --keystore, /data/keystore"
			agent_extra=", --keystore, /data/keystore"
			nets="      $m: {ipv4_address: \"$ip\"}"
			case $role in
			validator)
				signer=$(v "${M}_SIGNER")
				extra="$extra,
      --unlock, \"$signer\", --password, /keys/password, --allow-insecure-unlock"
				init_extra="$init_extra, --signer-keystore, /keys/keystore"
				agent_extra="$agent_extra, --seal, \"$signer\""
				;;
			tx)
				extra="$extra,
      --http, --http.addr, 0.0.0.0, --http.port, \"8545\", --http.api, \"eth,net,web3,txpool\", --http.vhosts, \"*\""
				;;
			public)
				pub=$(v "${M}_PUBLIC_IP")
				restrict="$NET.$i.0/24,$NET.0.0/24"
				agent_extra="$agent_extra, --public-ip, \"$pub\""
				nets="$nets
      internet: {ipv4_address: \"$pub\"}"
				;;
			esac
			cat <<EOF

  $svc-init:
    <<: *geth-init
    command: [--datadir, /data, init, /consortium/genesis.json]
    volumes:
      - $svc:/data
      - $DIR/genesis.json:/consortium/genesis.json:ro

  $svc-agent-init:
    <<: *oneshot
    command: [agent, init, --role, $role, --nodekey, /keys/nodekey, --state-dir, /data/agent,
      --config-out, /data/config.toml, --nat-ip, "$ip"$init_extra, $(reg_flags "$i")]
    volumes:
      - $svc:/data
      - $DIR/members/$m/$role-1:/keys:ro
$(client_mounts "$m")
    networks: [$m]
    depends_on: [registrar]

  $svc:
    <<: *geth
    command: [--datadir, /data, --config, /data/config.toml, --nodekey, /keys/nodekey,
      --port, "30303", --nat, "extip:$ip", --bootnodes, "$(v "${M}_BOOTNODE")",
      --netrestrict, "$restrict", --syncmode, full, --cache, "128", --ipcpath, /data/geth.ipc$extra]
    volumes:
      - $svc:/data
      - $DIR/members/$m/$role-1:/keys:ro
    networks:
$nets
    depends_on:
      $svc-init: {condition: service_completed_successfully}
      $svc-agent-init: {condition: service_completed_successfully}

  $svc-agent:
    <<: *consortium
    # The agent-only build (internal/agent/agentonly): a Clique node's
    # agent has no consensus process to run, and this build's RSS is a
    # fifth of the full binary's (docs/benchmarks.md, "Agent RSS").
    entrypoint: [/usr/local/bin/consortium-agent]
    command: [--role, $role, --rpc, /data/geth.ipc, --nodekey, /keys/nodekey,
      --state-dir, /data/agent, --config-out, /data/config.toml, --advertise-ip, "$ip"$agent_extra,
      --listen, "127.0.0.1:9899", $(reg_flags "$i")]
    healthcheck:
      test: [CMD, /usr/local/bin/consortium, healthcheck, "http://127.0.0.1:9899/healthz"]
    volumes:
      - $svc:/data
      - $DIR/members/$m/$role-1:/keys:ro
$(client_mounts "$m")
    networks: [$m]
    depends_on: [$svc]
EOF
		done
	done

	cat <<EOF

networks:
  # internal: no way out of this machine, and none between networks.
  # ip_range keeps docker's own address picks (init and agent containers)
  # away from the fixed addresses below .128.
  internet:
    internal: true
    ipam: {config: [{subnet: "$NET.0.0/24", ip_range: "$NET.0.128/25"}]}
EOF
	i=0
	for m in "${members[@]}"; do
		i=$((i + 1))
		cat <<EOF
  $m:
    internal: true
    ipam: {config: [{subnet: "$NET.$i.0/24", ip_range: "$NET.$i.128/25"}]}
EOF
	done
	cat <<EOF
  registrar-host: {}
  # The registrars and their etcd; no member's node joins it.
  registrar-backend:
    internal: true

volumes:
  registrar:
  registrar-2:
  registrar-3:
  etcd-1:
  etcd-2:
  etcd-3:
EOF
	for m in "${members[@]}"; do
		for rp in "${roles[@]}"; do
			echo "  $m-${rp%%:*}:"
		done
	done
} >docker-compose.yml

# ============================================================== BFT variant
# Four members (one can be lost without a pause: n >= 3f + 1). Per geth
# node, a pod of containers: "m-role" holds the node's network namespace
# (deploy/docker/pause) on its fixed addresses; geth v1.17 ("m-role-geth")
# and the agent ("m-role-agent", which on a BFT chain is also the node's
# consensus process: CometBFT in-process, driving geth over the Engine API
# on the shared loopback) join it. They must share it: the node's signed
# record names one IP for its devp2p and its CometBFT endpoints. Only the
# public nodes are on the internet network, for geth and consensus traffic
# alike (CometBFT's sentry pattern: a validator talks to its own member's
# nodes only).
{
	cat <<EOF
# GENERATED by gen-compose.sh: edit that script and run it again.
#
# The BFT reference consortium: four members (a, b, c, d), one validator
# each, so one member can be lost and the chain goes on. Each member has its
# own private network with a bootnode, a validator, a transaction node and a
# public node. A geth node is three containers sharing one network
# namespace, like a Kubernetes pod: m-role (it holds the namespace and the
# addresses), m-role-geth (geth v1.17.10) and m-role-agent (the agent, and
# the node's consensus process: CometBFT driving geth over the Engine API on
# the shared loopback). Only the public nodes and the consortium registrar
# join the shared "internet" network; geth's and CometBFT's traffic between
# members goes through the public nodes only. The registrar and Prometheus
# are also on each member's network: the member's egress to the registrar,
# and the monitoring's way in; neither forwards packets.
#
# Start and stop it with CONSENSUS=bft up.sh and down.sh. See docs/deploy.md.

x-consortium: &consortium
  image: $(v CONSORTIUM_IMAGE)
  restart: unless-stopped

x-oneshot: &oneshot
  image: $(v CONSORTIUM_IMAGE)
  restart: "no"
  healthcheck: {disable: true}

x-pause: &pause
  image: $(v CONSORTIUM_IMAGE)
  restart: unless-stopped
  entrypoint: [/usr/local/bin/pause]
  command: []
  healthcheck: {disable: true}
  stop_grace_period: 2s

x-geth: &geth
  image: $(v GETH_IMAGE)
  restart: unless-stopped
  stop_grace_period: 30s

x-geth-init: &geth-init
  image: $(v GETH_IMAGE)
  restart: "no"
  network_mode: none
  healthcheck: {disable: true}

services:
  # ------------------------------------------------ the consortium registrar
  # Three replicas share one three-member etcd (the etcd members run inside
  # the consortium image: consortium etcd). Each replica carries the alias
  # "registrar" on every network, so docker's DNS answers the name with
  # every running replica; an agent whose replica dies reconnects to another.
EOF
	registrar_services bft "${bft_members[@]}"

	cat <<EOF

  # -------------------------------------------------------------- monitoring
  # Debian's Prometheus (deploy/build-images.sh), with the alert rules of
  # deploy/prometheus/alerts.yml; on the host's loopback only.
  prometheus:
    image: $(v PROMETHEUS_IMAGE)
    restart: unless-stopped
    command: [--config.file=/etc/prometheus/prometheus.yml, --storage.tsdb.path=/data,
      --storage.tsdb.retention.time=2d, --web.listen-address=:9090]
    volumes:
      - prometheus:/data
      - ./prometheus.yml:/etc/prometheus/prometheus.yml:ro
      - ../prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro
      - $DIR/tls/ca.pem:/tls/ca.pem:ro
    ports:
      - "127.0.0.1:$(v PROMETHEUS_PORT):9090"
    networks:
      registrar-backend: {}
      prometheus-host: {}
EOF
	for m in "${bft_members[@]}"; do
		echo "      $m: {}"
	done

	i=0
	for m in "${bft_members[@]}"; do
		i=$((i + 1))
		M=$(upper "$m")
		cat <<EOF

  # ---------------------------------------------------------------- member $m
  $m-bootnode:
    <<: *consortium
    command: [bootnode, --listen, ":30301", --nodekey, /keys/nodekey, --data, /tmp/bootnode,
      --external-ip, "$NET.$i.10", --netrestrict, "$NET.$i.0/24", --http, ":9900",
      $(reg_flags "$i")]
    healthcheck:
      test: [CMD, /usr/local/bin/consortium, healthcheck, "http://127.0.0.1:9900/healthz"]
    volumes:
      - $DIR/members/$m/bootnode-1:/keys:ro
$(client_mounts "$m")
    networks:
      $m: {ipv4_address: "$NET.$i.10"}
    depends_on: [registrar]
EOF
		for rp in "${roles[@]}"; do
			role=${rp%%:*}
			ip=$NET.$i.${rp##*:}
			node=$m-$role
			restrict="$NET.$i.0/24"
			extra=""
			agent_extra=""
			agent_priv=""
			# Where geth's and the agent's metrics listen: every address,
			# except on a public node, where only its member's network may
			# reach them (Prometheus comes that way), not the internet one.
			mon_ip=0.0.0.0
			nets="      $m: {ipv4_address: \"$ip\"}"
			case $role in
			tx)
				extra=",
      --http, --http.addr, 0.0.0.0, --http.port, \"8545\", --http.api, \"eth,net,web3,txpool\", --http.vhosts, \"*\""
				;;
			public)
				pub=$(v "${M}_PUBLIC_IP")
				restrict="$NET.$i.0/24,$NET.0.0/24"
				# The allow-list (issue 18): the public node's agent keeps an
				# nftables table in the node's namespace that lets only its
				# peer set's IPs reach geth's and CometBFT's TCP ports, so a
				# stranger on the internet network cannot connect at all. nft
				# needs CAP_NET_ADMIN, which Docker gives a non-root user in
				# no usable way (no ambient capabilities): this agent, and
				# its init (which writes the same state files), run as root.
				agent_extra=", --public-ip, \"$pub\", --firewall, nftables"
				mon_ip=$ip
				agent_priv="
    user: \"0:0\"
    cap_add: [NET_ADMIN]"
				nets="$nets
      internet: {ipv4_address: \"$pub\"}"
				;;
			esac
			# Crash-safe state (--state.scheme hash --gcmode archive: every
			# block's state written as it is imported). geth's default, the
			# path scheme, keeps recent state in memory and writes it only
			# when a 64 MB buffer fills or at a clean stop: a geth killed
			# with SIGKILL came back at genesis, and its consensus process
			# had to replay the whole chain through the Engine API before
			# it could take part again (the "validator killed" scenario:
			# 600 heights, over a minute on the loaded machine). A block of
			# this chain changes a few storage slots, so keeping every
			# state costs little.
			cat <<EOF

  # $node: one node, three containers in one network namespace.
  $node:
    <<: *pause
    networks:
$nets

  $node-init:
    <<: *geth-init
    command: [--datadir, /data, --state.scheme, hash, init, /consortium/genesis.json]
    volumes:
      - $node:/data
      - $DIR/genesis.json:/consortium/genesis.json:ro

  $node-agent-init:
    <<: *oneshot
    network_mode: "service:$node"$agent_priv
    command: [agent, init, --role, $role, --nodekey, /keys/nodekey, --state-dir, /data/agent,
      --config-out, /data/config.toml, --nat-ip, "$ip", $(reg_flags "$i")]
    volumes:
      - $node:/data
      - $DIR/members/$m/$role-1:/keys:ro
$(client_mounts "$m")
    depends_on: [$node, registrar]

  $node-geth:
    <<: *geth
    network_mode: "service:$node"
    command: [--datadir, /data, --config, /data/config.toml, --nodekey, /keys/nodekey,
      --port, "30303", --nat, "extip:$ip", --bootnodes, "$(v "${M}_BOOTNODE")",
      --netrestrict, "$restrict", --syncmode, full, --cache, "128", --ipcpath, /data/geth.ipc,
      --authrpc.addr, 127.0.0.1, --authrpc.port, "8551", --authrpc.vhosts, localhost,
      --authrpc.jwtsecret, /keys/jwtsecret, --metrics, --metrics.addr, "$mon_ip", --metrics.port, "6060",
      --state.scheme, hash, --gcmode, archive$extra]
    volumes:
      - $node:/data
      - $DIR/members/$m/$role-1:/keys:ro
    depends_on:
      $node: {condition: service_started}
      $node-init: {condition: service_completed_successfully}
      $node-agent-init: {condition: service_completed_successfully}

  # The agent, and the node's consensus process: its CometBFT home (keys
  # from consortium init, block store and state) is the init output's
  # cometbft directory; down.sh resets its data with the chain's.
  $node-agent:
    <<: *consortium
    network_mode: "service:$node"$agent_priv
    command: [agent, run, --role, $role, --rpc, /data/geth.ipc, --nodekey, /keys/nodekey,
      --state-dir, /data/agent, --config-out, /data/config.toml, --advertise-ip, "$ip"$agent_extra,
      --listen, "$mon_ip:9899", --consensus-home, /cometbft, --consensus-p2p, "0.0.0.0:26656",
      --engine, "http://127.0.0.1:8551", --jwt-secret, /keys/jwtsecret,
      --fee-recipient, "$(v "${M}_FEE_RECIPIENT")", $(reg_flags "$i")]
    healthcheck:
      test: [CMD, /usr/local/bin/consortium, healthcheck, "http://$(health_ip "$mon_ip"):9899/healthz"]
    volumes:
      - $node:/data
      - $DIR/members/$m/$role-1:/keys:ro
      - $DIR/members/$m/$role-1/cometbft:/cometbft
$(client_mounts "$m")
    depends_on: [$node-geth]
EOF
		done
		# A node with no agent (issue 23): plain geth v1.17 whose only
		# peering flag is the member's --discovery.dns enrtree:// URL from
		# consortium init. Its resolver is the registrars (dns:, on the
		# member's network; docker's own DNS forwards the query from the
		# container's address, which --dns-allow admits for this member's
		# zone only), so it finds its member's nodes in the signed tree the
		# registrar serves. Nothing else tells it of any node.
		ip=$NET.$i.14
		cat <<EOF

  # $m-plain: plain geth, no agent, finds its peers through DNS only.
  $m-plain-init:
    <<: *geth-init
    command: [--datadir, /data, init, /consortium/genesis.json]
    volumes:
      - $m-plain:/data
      - $DIR/genesis.json:/consortium/genesis.json:ro

  $m-plain:
    <<: *geth
    command: [--datadir, /data, --port, "30303", --nat, "extip:$ip", --netrestrict, "$NET.$i.0/24",
      --syncmode, full, --cache, "128", --ipcpath, /data/geth.ipc,
      --discovery.dns, "$(v "${M}_DISCOVERY_DNS")"]
    dns: ["$NET.$i.2", "$NET.$i.3", "$NET.$i.4"]
    volumes:
      - $m-plain:/data
    networks:
      $m: {ipv4_address: "$ip"}
    depends_on:
      $m-plain-init: {condition: service_completed_successfully}
      registrar: {condition: service_started}

  # Its record: signed with the key geth made in its data directory and
  # kept leased by consortium node register, which never talks to geth.
  # Without it the member's agents drop the plain node (it would be in no
  # peer set). Until geth has written its key the command fails and the
  # container is started again. It has an address of its own on the
  # member's network: sharing the plain node's network namespace would
  # leave it without a network once that container restarts.
  $m-plain-register:
    <<: *consortium
    networks:
      $m: {ipv4_address: "$NET.$i.15"}
    command: [node, register, --nodekey, /plain/geth/nodekey, --ip, "$ip", --port, "30303", --role, tx,
      $(reg_flags "$i")]
    healthcheck: {disable: true}
    volumes:
      - $m-plain:/plain:ro
$(client_mounts "$m")
    depends_on: [$m-plain]
EOF
	done

	cat <<EOF

networks:
  # internal: no way out of this machine, and none between networks.
  # ip_range keeps docker's own address picks away from the fixed
  # addresses below .128.
  internet:
    internal: true
    ipam: {config: [{subnet: "$NET.0.0/24", ip_range: "$NET.0.128/25"}]}
EOF
	i=0
	for m in "${bft_members[@]}"; do
		i=$((i + 1))
		cat <<EOF
  $m:
    internal: true
    ipam: {config: [{subnet: "$NET.$i.0/24", ip_range: "$NET.$i.128/25"}]}
EOF
	done
	cat <<EOF
  registrar-host: {}
  # Prometheus' port on the host's loopback; nothing else joins it.
  prometheus-host: {}
  # The registrars and their etcd (and Prometheus, which scrapes the
  # registrars); no member's node joins it.
  registrar-backend:
    internal: true

volumes:
  registrar:
  registrar-2:
  registrar-3:
  etcd-1:
  etcd-2:
  etcd-3:
  prometheus:
EOF
	for m in "${bft_members[@]}"; do
		for rp in "${roles[@]}"; do
			echo "  $m-${rp%%:*}:"
		done
		echo "  $m-plain:"
	done
} >docker-compose.bft.yml

# The BFT consortium's scrape configuration: targets by the names docker's
# DNS gives them on the member networks Prometheus joins; every node's
# targets labelled with member and role, as the alert rules expect.
{
	cat <<EOF
# GENERATED by gen-compose.sh: Prometheus in the BFT compose consortium.
global:
  scrape_interval: 5s
  evaluation_interval: 5s
rule_files: [/etc/prometheus/alerts.yml]
scrape_configs:
  - job_name: consortium-registrar
    scheme: https
    tls_config: {ca_file: /tls/ca.pem, server_name: registrar}
    static_configs:
      - targets: ["registrar-1:9898", "registrar-2:9898", "registrar-3:9898"]
EOF
	for job in consortium-agent:9899:/metrics geth:6060:/debug/metrics/prometheus; do
		name=${job%%:*}
		rest=${job#*:}
		port=${rest%%:*}
		path=${rest#*:}
		echo "  - job_name: $name"
		[ "$path" = /metrics ] || echo "    metrics_path: $path"
		echo "    static_configs:"
		for m in "${bft_members[@]}"; do
			for rp in "${roles[@]}"; do
				echo "      - {targets: [\"$m-${rp%%:*}:$port\"], labels: {member: $m, role: ${rp%%:*}}}"
			done
		done
	done
	echo "  - job_name: consortium-bootnode"
	echo "    static_configs:"
	for m in "${bft_members[@]}"; do
		echo "      - {targets: [\"$m-bootnode:9900\"], labels: {member: $m, role: bootnode}}"
	done
} >prometheus.yml
echo "wrote $(pwd)/docker-compose.yml, docker-compose.bft.yml and prometheus.yml" >&2
