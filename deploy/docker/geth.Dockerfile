# The geth image: a static geth (built from the Go module proxy with
# CGO_ENABLED=0 by deploy/build-images.sh) on an empty root file system.
#
# Context:
#   rootfs/   /etc/passwd, /etc/group, /etc/nsswitch.conf
#   geth      the binary
#
# Conventions the compose file and the Helm chart rely on: the data
# directory is /data, so the IPC socket, which the agent beside geth uses
# for the admin API, is /data/geth.ipc.
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 rootfs-data/ /data/
COPY --chown=65532:65532 rootfs-data/ /home/nonroot/
COPY geth /usr/local/bin/geth
ENV HOME=/home/nonroot
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 30303 30303/udp
# Answered by geth itself over its IPC socket; fails while geth is down or
# has not opened the socket yet.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/geth", "--datadir", "/data", "attach", "--exec", "net.listening", "/data/geth.ipc"]
ENTRYPOINT ["/usr/local/bin/geth"]
ARG VERSION=unknown
LABEL org.opencontainers.image.title="geth" \
      org.opencontainers.image.description="go-ethereum, static, for consortium deployments" \
      org.opencontainers.image.version="${VERSION}"
