# tradepipe: a release build in the Rust image, run from a slim Debian image as an unprivileged
# user. Used by docker-compose.yml (tradepipe, the replay peer and the news server are this image).
#   docker build -t tradepipe:local .

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits do not rebuild them: a stub crate with the real manifest.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/candles.rs && cp benches/candles.rs benches/analysis.rs \
    && cargo build --release --locked \
    && rm -rf src benches
COPY src src
COPY benches benches
COPY migrations migrations
COPY model model
# Cargo compares mtimes: make sure the real sources are newer than the stub's build.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin tradepipe

FROM debian:bookworm-slim
# ca-certificates: TLS to the exchange and news sites; curl: the container health checks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/tradepipe --create-home tradepipe \
    && mkdir -p /var/lib/tradepipe/spool /var/lib/tradepipe/archive \
    && chown -R tradepipe:tradepipe /var/lib/tradepipe
COPY --from=build /src/target/release/tradepipe /usr/local/bin/tradepipe
COPY config/default.toml config/sources.toml /etc/tradepipe/
# The recorded trades and news pages for the offline replay peer and news server.
COPY data /usr/share/tradepipe/data
WORKDIR /var/lib/tradepipe
USER tradepipe
ENV TRADEPIPE_LOG_FORMAT=json \
    TRADEPIPE_HTTP_ADDR=0.0.0.0:9898 \
    TRADEPIPE_SPOOL_DIR=/var/lib/tradepipe/spool \
    TRADEPIPE_ARCHIVE_DIR=/var/lib/tradepipe/archive \
    TRADEPIPE_SOURCES_FILE=/etc/tradepipe/sources.toml
EXPOSE 9898
ENTRYPOINT ["tradepipe"]
CMD ["run", "--config", "/etc/tradepipe/default.toml"]
