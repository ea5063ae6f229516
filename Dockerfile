# syntax=docker/dockerfile:1
# One image with the four service binaries; compose.yaml picks one per
# container with `entrypoint`. Build: docker build -t oms .

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src
# The protos compile with protox (no protoc) and the mesh's TLS is rustls;
# librdkafka's TLS links the system's OpenSSL (headers here, libssl3 in the
# runtime image), besides the slim image's C compiler (ring, SQLite, mimalloc).
RUN apt-get update && apt-get install -y --no-install-recommends libssl-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
COPY . .
# The production profile (Cargo.toml): full optimisation and thin LTO.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --profile production --locked -p user-svc -p product-svc -p order-svc -p gateway \
 && mkdir -p /out \
 && cp target/production/user-svc target/production/product-svc target/production/order-svc \
       target/production/gateway /out/

# glibc, libssl3 and libgcc only, no shell, no package manager; runs as
# uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER nonroot:nonroot
# SQLite files and a generated signing key go under ./data when a service
# runs alone without DATABASE_URL; the home directory is writable.
WORKDIR /home/nonroot
ENV LOG_FORMAT=json
EXPOSE 50051 50052 50053 8080 9090
# Every binary answers `healthcheck` (gRPC health, or the gateway's /readyz).
ENTRYPOINT ["/usr/local/bin/gateway"]
