# syntax=docker/dockerfile:1
#
# The seckill server as a small image: a static binary built with Go, run
# from distroless (no shell, no package manager) as a non-root user.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t seckill .
#   docker run --rm seckill -version
#
# docker-compose.yml builds it and wires MySQL, Redis and Kafka to it.

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a change of the code alone reuses this layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/seckill ./cmd/seckill

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/seckill /usr/local/bin/seckill
# nonroot (65532) owns its home: the embedded development broker, used when
# SECKILL_KAFKA_BROKERS is empty, keeps its data in data/kafka under it.
WORKDIR /home/nonroot
USER nonroot:nonroot
ENV SECKILL_HTTP_ADDR=:8080
EXPOSE 8080
# Exec form: distroless has no shell, and no curl; the binary checks itself.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/usr/local/bin/seckill", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/seckill"]
