# syntax=docker/dockerfile:1
#
# vward image: a static binary (CGO_ENABLED=0; SQLite is modernc.org/sqlite,
# pure Go) on distroless, running as a non-root user. docker-compose.yml
# builds it; docs/operator.md describes the deployment.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Dependencies first, so editing our code does not re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/vward ./cmd/vward
# distroless has no shell to mkdir with: make /data here, owned by the
# "nonroot" user (65532), so a fresh named volume inherits that ownership.
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/vward /usr/local/bin/vward
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
# Inside a container the board must listen on all interfaces (the binary's
# default is loopback), and the SQL store belongs on the volume.
ENV VWARD_HTTP_ADDR=0.0.0.0:8080 \
    VWARD_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
ENTRYPOINT ["vward"]
CMD ["serve"]
