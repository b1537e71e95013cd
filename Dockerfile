# The harness, built from this repository.
FROM rust:1.91-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin harness

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/harness /usr/local/bin/harness
COPY scenarios /scenarios
WORKDIR /
ENTRYPOINT ["harness"]
