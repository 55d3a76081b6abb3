# The Prometheus image: Debian's prometheus binary (apt-get install
# prometheus) with the shared libraries it links, on an empty root file
# system. Built by deploy/build-images.sh, which copies them in (ldd); no
# image is pulled.
#
# Context:
#   rootfs/   /etc/passwd, /etc/group, /etc/nsswitch.conf, /usr/bin/prometheus,
#             its libraries (libc, the loader) under their own paths, and
#             /usr/share/prometheus/web (Debian's console assets)
#
# The compose file mounts the configuration (prometheus.yml) and the alert
# rules (alerts.yml) under /etc/prometheus; the TSDB lives in /data.
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 rootfs-data/ /data/
COPY --chown=65532:65532 rootfs-data/ /home/nonroot/
ENV HOME=/home/nonroot
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/data", "--web.listen-address=:9090"]
ARG VERSION=unknown
LABEL org.opencontainers.image.title="prometheus" \
      org.opencontainers.image.description="Debian's Prometheus, for the consortium's compose deployment" \
      org.opencontainers.image.version="${VERSION}"
