# Build stage: a release binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake clang && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cargo build --release --locked --bin tessera

# Runtime stage: small, non-root, keys on a volume.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home /var/lib/tessera tessera \
    && mkdir -p /var/lib/tessera/keys && chown -R tessera /var/lib/tessera
COPY --from=build /src/target/release/tessera /usr/local/bin/tessera
USER tessera
WORKDIR /var/lib/tessera
ENV TESSERA_KEYS__DIR=/var/lib/tessera/keys TESSERA_BIND=0.0.0.0:8080
VOLUME ["/var/lib/tessera/keys"]
EXPOSE 8080
ENTRYPOINT ["tessera"]
CMD ["serve"]
