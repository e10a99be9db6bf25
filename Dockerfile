# tradepipe: a release build in the Rust image, run from a slim Debian image as an unprivileged
# user. Used by docker-compose.yml: the default target is the daemon alone; the `testkit` target
# adds the replay peer and the news site (test equipment) with their recorded data.
#   docker build -t tradepipe:local .

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the dependency build between image builds, so a source edit
# rebuilds only the workspace's own crates. The binaries are copied out of the cache mount.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p tradepipe -p tradepipe-testkit --bins \
    && mkdir -p /out && cp target/release/tradepipe target/release/tradepipe-testkit /out/

FROM debian:bookworm-slim AS runtime
# ca-certificates: TLS to the exchange and news sites; curl: the container health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/tradepipe --create-home tradepipe \
    && mkdir -p /var/lib/tradepipe/spool /var/lib/tradepipe/archive \
    && chown -R tradepipe:tradepipe /var/lib/tradepipe
WORKDIR /var/lib/tradepipe

# The offline peers of the compose stack (`target: testkit`): `tradepipe-testkit` and the recorded
# trades and news pages it serves. Test equipment, never in the daemon's image.
FROM runtime AS testkit
COPY --from=build /out/tradepipe-testkit /usr/local/bin/tradepipe-testkit
COPY data /usr/share/tradepipe/data
USER tradepipe
ENTRYPOINT ["tradepipe-testkit"]
CMD ["--help"]

# The daemon (the default, last target).
FROM runtime AS daemon
COPY --from=build /out/tradepipe /usr/local/bin/tradepipe
COPY config/default.toml config/sources.toml /etc/tradepipe/
USER tradepipe
ENV TRADEPIPE_LOG_FORMAT=json \
    TRADEPIPE_HTTP_ADDR=0.0.0.0:9898 \
    TRADEPIPE_SPOOL_DIR=/var/lib/tradepipe/spool \
    TRADEPIPE_ARCHIVE_DIR=/var/lib/tradepipe/archive \
    TRADEPIPE_SOURCES_FILE=/etc/tradepipe/sources.toml
EXPOSE 9898
ENTRYPOINT ["tradepipe"]
CMD ["run", "--config", "/etc/tradepipe/default.toml"]
