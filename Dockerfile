# syntax=docker/dockerfile:1
#
# The realtime node image: a static binary on distroless, no shell, uid 65532.
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t realtime .
#   docker run --rm -p 8080:8080 realtime --dev
#
# Everything after the image name is appended to `realtime serve`; every flag is
# also read from REALTIME_<FLAG> (see helm/realtime for the Kubernetes settings).

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
ARG TARGETOS
ARG TARGETARCH
ARG VERSION=dev
WORKDIR /src
# Dependencies first, so a source change does not re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} GOFLAGS=-buildvcs=false \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/realtime ./cmd/realtime

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/realtime /realtime
USER 65532:65532
# 8080: public WebSocket (--addr). 9090: health, readiness, metrics and the server
# API (--admin-addr; it binds 127.0.0.1 unless told otherwise, the chart sets 0.0.0.0).
EXPOSE 8080 9090
ENTRYPOINT ["/realtime", "serve"]
