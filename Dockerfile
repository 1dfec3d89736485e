# The ci-healer image holds only the `healer` binary and git (for the checkout step). Attempt pods copy
# the binary into a shared volume, so agent and validate steps run in any toolchain image.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
COPY config/prompts ./config/prompts
# No default features: the development stand-ins (src/runner/, `healer host-runner`) stay out of the release.
RUN cargo build --release --locked --no-default-features --bin healer && strip target/release/healer

FROM docker.io/library/debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/healer /usr/local/bin/healer
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/healer"]
CMD ["controller"]
