# Build stage: Tessera and the example downstream service, built with the
# fully optimized profile. The dependencies are built first, from the
# manifests and the lock file alone, in a layer of their own: editing
# Tessera's sources rebuilds only the workspace's crates.
FROM rust:1.95-bookworm AS build
# The Cargo profile of the images (its output is target/$PROFILE).
ARG PROFILE=dist
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates/tessera-verify/Cargo.toml crates/tessera-verify/
COPY crates/tessera-bench/Cargo.toml crates/tessera-bench/
COPY crates/notebooks-example/Cargo.toml crates/notebooks-example/
# Stub sources for every target the manifests declare, so that Cargo
# resolves the workspace and builds the dependencies only.
RUN mkdir -p src crates/tessera-verify/src crates/tessera-verify/tests/verify \
        crates/tessera-bench/src crates/notebooks-example/src \
        crates/notebooks-example/tests/notebooks \
    && touch src/lib.rs crates/tessera-verify/src/lib.rs crates/notebooks-example/src/lib.rs \
    && for main in src/main.rs crates/tessera-verify/tests/verify/main.rs \
        crates/tessera-bench/src/main.rs crates/notebooks-example/src/main.rs \
        crates/notebooks-example/tests/notebooks/main.rs; do \
        echo 'fn main() {}' > "$main"; \
    done
RUN cargo build --profile "$PROFILE" --locked -p tessera --bin tessera \
    && cargo build --profile "$PROFILE" --locked -p tessera-example-notebooks --bin notebooks
COPY . .
# The real sources may be older than the stubs' build: touch them so that
# Cargo rebuilds the workspace's crates.
RUN find src crates -name '*.rs' -exec touch {} + \
    && cargo build --profile "$PROFILE" --locked -p tessera --bin tessera \
    && cargo build --profile "$PROFILE" --locked -p tessera-example-notebooks --bin notebooks \
    && mkdir -p /out \
    && cp "target/$PROFILE/tessera" "target/$PROFILE/notebooks" /out/

# The example downstream service (docker-compose's `notebooks`).
FROM debian:bookworm-slim AS notebooks
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10002 notebooks \
    && useradd --system --uid 10002 --gid 10002 notebooks
COPY --from=build /out/notebooks /usr/local/bin/notebooks
USER 10002
ENV NOTEBOOKS_BIND=0.0.0.0 NOTEBOOKS_PORT=8081
EXPOSE 8081
ENTRYPOINT ["notebooks"]

# Tessera (the default target): non-root, with the working directory (where
# a SQLite database would live) and the key directory on volumes.
FROM debian:bookworm-slim AS tessera
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 tessera \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/tessera tessera \
    && mkdir -p /var/lib/tessera/keys \
    && chown -R tessera:tessera /var/lib/tessera \
    && chmod 0700 /var/lib/tessera/keys
COPY --from=build /out/tessera /usr/local/bin/tessera
# By number, so that Kubernetes' runAsNonRoot can check it.
USER 10001
WORKDIR /var/lib/tessera
ENV TESSERA_BIND=0.0.0.0:8080 TESSERA_KEYS__DIR=/var/lib/tessera/keys
VOLUME ["/var/lib/tessera", "/var/lib/tessera/keys"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["tessera"]
CMD ["serve"]
