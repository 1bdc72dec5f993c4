# Build stage: release binaries of Tessera and of the example downstream
# service.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin tessera \
    && cargo build --release --locked -p tessera-example-notebooks --bin notebooks

# The example downstream service (docker-compose's `notebooks`).
FROM debian:bookworm-slim AS notebooks
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 notebooks
COPY --from=build /src/target/release/notebooks /usr/local/bin/notebooks
USER notebooks
ENV NOTEBOOKS_BIND=0.0.0.0 NOTEBOOKS_PORT=8081
EXPOSE 8081
ENTRYPOINT ["notebooks"]

# Tessera (the default target): small, non-root, keys on a volume.
FROM debian:bookworm-slim AS tessera
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/tessera tessera \
    && mkdir -p /var/lib/tessera/keys && chown -R tessera /var/lib/tessera \
    && chmod 0700 /var/lib/tessera/keys
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
USER tessera
WORKDIR /var/lib/tessera
ENV TESSERA_KEYS__DIR=/var/lib/tessera/keys TESSERA_BIND=0.0.0.0:8080
VOLUME ["/var/lib/tessera/keys"]
EXPOSE 8080
ENTRYPOINT ["tessera"]
CMD ["serve"]
