# syntax=docker/dockerfile:1
#
# One multi-stage build for both services:
#   docker build --target auth-server  -t auth-server  .
#   docker build --target resource-api -t resource-api .
# docker-compose.yml builds both targets; `e2e` is the test runner of the
# compose `test` profile.

ARG RUST_VERSION=1.95
ARG DEBIAN=bookworm

# --- build -------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN} AS build
# libpq for Diesel's PostgreSQL backend.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src

# Dependencies first, against stub sources: this layer is rebuilt only when a
# manifest or the lock file changes, not on every source edit.
COPY Cargo.toml Cargo.lock ./
COPY auth-server/Cargo.toml auth-server/
COPY resource-api/Cargo.toml resource-api/
COPY shared-claims/Cargo.toml shared-claims/
COPY service-kit/Cargo.toml service-kit/
COPY test-db/Cargo.toml test-db/
COPY bench/Cargo.toml bench/
RUN mkdir -p auth-server/src resource-api/src shared-claims/src service-kit/src test-db/src bench/src \
 && echo 'fn main() {}' > auth-server/src/main.rs \
 && echo 'fn main() {}' > resource-api/src/main.rs \
 && echo 'fn main() {}' > bench/src/main.rs \
 && touch auth-server/src/lib.rs resource-api/src/lib.rs shared-claims/src/lib.rs service-kit/src/lib.rs test-db/src/lib.rs \
 && cargo build --release --locked -p auth-server -p resource-api \
 && rm -rf auth-server/src resource-api/src shared-claims/src service-kit/src test-db/src
# The benchmark is a workspace member: cargo needs it present, not built.
COPY bench bench
# The test databases' helper: only the e2e stage builds it.
COPY test-db test-db

COPY migrations migrations
COPY diesel.toml ./
COPY auth-server auth-server
COPY resource-api resource-api
COPY shared-claims shared-claims
COPY service-kit service-kit
# Stubs' build outputs are older than the real sources; touch so cargo
# rebuilds the workspace crates.
RUN touch auth-server/src/main.rs auth-server/src/lib.rs resource-api/src/main.rs resource-api/src/lib.rs shared-claims/src/lib.rs service-kit/src/lib.rs \
 && cargo build --release --locked -p auth-server -p resource-api \
 && install -D -m 0755 target/release/auth-server /out/auth-server \
 && install -D -m 0755 target/release/resource-api /out/resource-api

# --- runtime base --------------------------------------------------------------
FROM debian:${DEBIAN}-slim AS runtime
# Only what the binaries load: libpq (auth-server) and CA certificates
# (reqwest over https when AUTH_URL is https).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /nonexistent --shell /usr/sbin/nologin app \
 && mkdir -p /keys /secrets \
 && chown app:app /keys /secrets \
 && chmod 0700 /keys /secrets
# Named volumes mounted here start with this ownership.
USER app:app
ENV APP_ENV=production RUST_LOG=info

# --- auth-server ---------------------------------------------------------------
FROM runtime AS auth-server
COPY --from=build /out/auth-server /usr/local/bin/auth-server
ENV AUTH_BIND=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
  CMD ["/usr/local/bin/auth-server", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/auth-server"]
CMD ["serve"]

# --- resource-api --------------------------------------------------------------
FROM runtime AS resource-api
COPY --from=build /out/resource-api /usr/local/bin/resource-api
ENV API_BIND=0.0.0.0:8081
EXPOSE 8081
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
  CMD ["/usr/local/bin/resource-api", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/resource-api"]
CMD ["serve"]

# --- e2e: the end-to-end suite in URL mode, for `docker compose --profile test` -
FROM build AS e2e
# The deployment checks read these.
COPY docker-compose.yml Dockerfile ./
RUN cargo test --release --locked -p resource-api --test e2e --no-run
ENTRYPOINT ["cargo", "test", "--release", "--locked", "-p", "resource-api", "--test", "e2e", "--"]
CMD ["--test-threads=2", "--nocapture"]
