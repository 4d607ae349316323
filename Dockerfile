# One multi-stage build for both services:
#   docker build --target auth-server  -t auth-server  .
#   docker build --target resource-api -t resource-api .
# docker-compose.yml builds both targets; `e2e` is the test runner of the
# compose `test` profile.
#
# Needs BuildKit (the cargo caches below are cache mounts): the default of
# Docker 23+ and Compose v2; with Docker 20.10 set DOCKER_BUILDKIT=1, and
# with docker-compose 1.29 also COMPOSE_DOCKER_CLI_BUILD=1. No `# syntax=`
# line on purpose: it makes BuildKit pull a frontend image, and Docker
# 20.10's built-in frontend already has cache mounts.
#
# The base images are build arguments, defaulting to the official images;
# CI, which reaches no image registry, builds from local stand-ins of them
# (docker/stand-ins.env, scripts/docker-images.sh).

ARG RUST_VERSION=1.95
ARG RUST_IMAGE=rust:${RUST_VERSION}-slim-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

# --- build -------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build
# libpq for Diesel's PostgreSQL backend.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# No debug info in the images' binaries (Cargo then strips the standard
# library's too): the release profile's line tables would triple their
# size. `install --strip` below drops the symbol table too (a quarter of
# what is left; panic backtraces lose function names).
ENV CARGO_PROFILE_RELEASE_DEBUG=false
# The workspace's release profile is fat LTO (a fifth less CPU a refresh,
# BENCHMARKS.md), whose whole-program step is long and single-threaded.
# Images default to thin LTO, still in one codegen unit per crate: as small
# a binary (auth-server 13.0 MB stripped, against 14.5 MB with 16 units,
# which would take the image past 100 MB) without that step. A production
# image can take the full profile: --build-arg RELEASE_LTO=fat.
ARG RELEASE_LTO=thin
ARG RELEASE_CODEGEN_UNITS=1
ENV CARGO_PROFILE_RELEASE_LTO=${RELEASE_LTO} \
    CARGO_PROFILE_RELEASE_CODEGEN_UNITS=${RELEASE_CODEGEN_UNITS}
# The whole workspace (less what .dockerignore leaves out): a member added
# to Cargo.toml needs no change here. Dependencies are not a layer of their
# own: the registry and target/ are cache mounts that outlive the build, so
# a rebuild after an edit compiles only the crates that changed.
COPY . .
RUN --mount=type=cache,id=auth-platform-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=auth-platform-target,target=/src/target \
    cargo build --release --locked -p auth-server -p resource-api \
 && install -D --strip -m 0755 target/release/auth-server /out/auth-server \
 && install -D --strip -m 0755 target/release/resource-api /out/resource-api

# --- the end-to-end test binary (for the e2e target) ------------------------------
FROM build AS e2e-build
RUN --mount=type=cache,id=auth-platform-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=auth-platform-target,target=/src/target \
    cargo test --release --locked -p stack-tests --test e2e --no-run \
        --message-format=json-render-diagnostics >/tmp/build.json \
 && binary=$(grep -o '"executable":"[^"]*/e2e-[^"]*"' /tmp/build.json | cut -d'"' -f4) \
 && install -D -m 0755 "$binary" /out/e2e

# --- runtime base --------------------------------------------------------------
FROM ${DEBIAN_IMAGE} AS runtime
# Only what the binaries load: libpq (auth-server) and CA certificates
# (reqwest over https when AUTH_URL is https).
# What apt and debconf leave behind (lists, logs, the -old copies of
# debconf's databases, and its templates, which only a later apt run would
# read) goes in the same layer: about 1.6 MB of a budget of 100 MB per
# image, which the auth server now fills to 99.9 MB. (Files of the base
# image, such as glibc's gconv modules, cannot be shed here: deleting them
# in a later layer frees nothing.)
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/debconf/*-old /var/cache/debconf/templates.dat \
      /var/log/apt /var/log/dpkg.log \
 && groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /nonexistent --shell /usr/sbin/nologin app \
 && mkdir -p /keys /secrets /db-superuser /db-password \
 && chown app:app /keys /secrets /db-superuser /db-password \
 && chmod 0700 /keys /secrets /db-superuser \
 && chmod 0755 /db-password
# Named volumes mounted here start with this ownership.
USER app:app
ENV APP_ENV=production RUST_LOG=info

# --- auth-server ---------------------------------------------------------------
FROM runtime AS auth-server
COPY --from=build /out/auth-server /usr/local/bin/auth-server
ENV AUTH_BIND=0.0.0.0:8080
# 8080 public; 9080 internal (metrics, revocation feed): never publish it.
EXPOSE 8080 9080
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
  CMD ["/usr/local/bin/auth-server", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/auth-server"]
CMD ["serve"]

# --- resource-api --------------------------------------------------------------
FROM runtime AS resource-api
COPY --from=build /out/resource-api /usr/local/bin/resource-api
ENV API_BIND=0.0.0.0:8081
# 8081 public; 9081 internal (metrics): never publish it.
EXPOSE 8081 9081
HEALTHCHECK --interval=5s --timeout=3s --start-period=10s --retries=5 \
  CMD ["/usr/local/bin/resource-api", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/resource-api"]
CMD ["serve"]

# --- e2e: the end-to-end suite in URL mode, for `docker compose --profile test` -
FROM runtime AS e2e
# The workspace's files at the path the test binary was built in: the
# deployment checks read docker-compose.yml, the Dockerfile and Cargo.toml.
COPY --from=build /src /src
COPY --from=e2e-build /out/e2e /usr/local/bin/e2e
WORKDIR /src/stack-tests
ENTRYPOINT ["/usr/local/bin/e2e"]
CMD ["--test-threads=2", "--nocapture"]
