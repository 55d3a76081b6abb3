# The consortium image: one static binary on an empty root file system.
#
# Built by deploy/build-images.sh, which compiles the binary on the host
# (CGO_ENABLED=0) and hands this file a small context holding it:
#   rootfs/      /etc/passwd, /etc/group, /etc/nsswitch.conf, /data, /home/nonroot, /tmp
#   consortium   the binary
#   consortium-agent  the agent alone (internal/agent/agentonly): the flags
#                of `consortium agent run` without --consensus-home, for
#                Clique nodes (a smaller RSS than the full binary)
#   pause        deploy/docker/pause: waits for SIGTERM, nothing else
#   nft/         Debian's nft and the libraries it links, under their own
#                paths (empty without nftables on the host): for the
#                agent's opt-in firewall, --firewall nftables
# Nothing is pulled: `scratch` is no image, just "start from nothing".
#
# No CA certificates are installed: the registrar's certificate is checked
# against the CA given with --ca (a file mounted into the container), never
# against a system store. Add a CA bundle only if a registrar behind a
# public CA is used without --ca.
FROM scratch AS base
COPY rootfs/ /
COPY --chown=65532:65532 rootfs-data/ /data/
COPY --chown=65532:65532 rootfs-data/ /home/nonroot/
COPY consortium /usr/local/bin/consortium
COPY consortium-agent /usr/local/bin/consortium-agent
# Holds a node's network namespace for its geth and agent (compose).
COPY pause /usr/local/bin/pause
COPY nft/ /
ENV HOME=/home/nonroot
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
# 9898 registrar (http or https), 9899 agent health/metrics, 9900 bootnode
# health/metrics, 30301/udp bootnode discovery.
EXPOSE 9898 9899 9900 30301/udp
ENTRYPOINT ["/usr/local/bin/consortium"]
CMD ["--help"]
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="consortium" \
      org.opencontainers.image.description="registrar, agent and bootnode of a consortium of Ethereum networks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

# The health check is answered by the binary itself: `consortium healthcheck
# [URL]` GETs a /healthz and exits 0 on 200. With no URL it asks a plain-http
# registrar on 127.0.0.1:9898; a deployment names the URL of each role (the
# agent's :9899, the bootnode's :9900, an https registrar with SSL_CERT_FILE
# set to its CA), as deploy/compose/docker-compose.yml does.
FROM base AS healthcheck
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/consortium", "healthcheck"]

# Fallback for a binary without the healthcheck command: liveness of the
# binary only (it starts and answers). build-images.sh picks this target
# only when `consortium healthcheck` is missing, and says so.
FROM base AS liveness
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD ["/usr/local/bin/consortium", "version"]
