# hitship: a static binary on distroless, running as a non-root user.
#   docker build -t hitship .
#   docker run --rm hitship version
# The build needs the Go module proxy (or a vendored module cache) for `go mod download`.

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first: this layer is cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# The commit and version the image is built from (hitship version,
# hitship_build_info): .git is not in the build context, so they come as build
# arguments. `make image` and docker-compose.yml pass them:
#   docker build --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg VERSION=$(git describe --tags --always --dirty) -t hitship .
ARG REVISION=unknown
ARG VERSION=unknown
# Static (no cgo), reproducible paths, no symbol tables: a small image with
# nothing but the binary.
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -buildvcs=false \
      -ldflags="-s -w -X hitship/internal/buildinfo.revision=${REVISION} -X hitship/internal/buildinfo.version=${VERSION}" \
      -o /out/hitship ./cmd/hitship \
 && mkdir -p /out/spool

# distroless/static: CA certificates, tzdata, /etc/passwd with "nonroot" (65532);
# no shell, no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/hitship /hitship
# The default spool.dir, owned by the runtime user (Kubernetes mounts an emptyDir
# over it; plain `docker run` writes into the container's layer).
COPY --from=build --chown=65532:65532 /out/spool /var/lib/hitship/spool
USER 65532:65532
# http.listen: /metrics, /healthz, /readyz, /v1/
EXPOSE 9464
ENTRYPOINT ["/hitship"]
CMD ["run", "--config", "/etc/hitship/config.yaml"]
