# mcp-orchestrator: multi-stage build. The build stage compiles the release binary
# (the same `cargo build --locked --bin mcp-orchestrator` the test suite runs, plus
# --release); the runtime stage is debian:bookworm-slim with a non-root user.
# Config: the image ships config/default.toml at /etc/mcp-orchestrator/config.toml;
# mount your own file there, and/or override any key with MCPO__SECTION__KEY.
# API keys: the server listens on 0.0.0.0 here, so it refuses to start without
# keys. Make one with `mcp-orchestrator keys new --name NAME --scopes read,write`
# and mount the printed [[auth.keys]] entry (a digest, not the token) as the
# keys file, e.g. `docker run -v ./mcpo-keys.toml:/run/secrets/mcpo-keys.toml:ro …`.
# Clients then send `Authorization: Bearer <token>`.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The workspace's member crates (the pure core, crates/domain).
COPY crates ./crates
COPY static ./static
# Fonts the PDF reports embed (compiled in with include_bytes!).
COPY assets ./assets
COPY migrations ./migrations
COPY benches ./benches
COPY tests ./tests
COPY config ./config
RUN cargo build --release --locked --bin mcp-orchestrator

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin mcpo \
    && mkdir -p /data \
    && chown mcpo /data
COPY --from=build /src/target/release/mcp-orchestrator /usr/local/bin/mcp-orchestrator
COPY config/default.toml /etc/mcp-orchestrator/config.toml
ENV MCPO__SERVER__BIND=0.0.0.0:5060 \
    MCPO__STORAGE__SQLITE_PATH=/data/orchestrator.db \
    MCPO__LOG__FORMAT=json \
    MCPO__AUTH__KEYS_FILE=/run/secrets/mcpo-keys.toml
USER 10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 5060
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["mcp-orchestrator", "--config", "/etc/mcp-orchestrator/config.toml", "healthcheck"]
ENTRYPOINT ["mcp-orchestrator"]
CMD ["--config", "/etc/mcp-orchestrator/config.toml", "serve"]
