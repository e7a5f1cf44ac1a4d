# Multi-stage build of one of the binaries (ingest, sender, replay, all-in-one):
#   docker build --build-arg CMD=ingest \
#     --build-arg VERSION=$(git describe --tags --always --dirty) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) -t ctmpipe-ingest .
# The result is a static binary on a distroless base, running as non-root
# (uid 65532), with /healthcheck for docker-compose's healthchecks (the base
# has no shell or curl) and /ctm, the operator CLI (docker compose exec
# sender /ctm streams). The Go version is go.mod's `go` line exactly;
# deploy/deploy_test.go fails when they differ.
#
# .dockerignore drops .git, so Go cannot stamp the commit itself
# (-buildvcs): VERSION, COMMIT and BUILD_DATE reach the binaries through
# -ldflags -X, and `/app -version` and the build_info metric show them.
FROM golang:1.26.8 AS build
ARG CMD=ingest
ARG VERSION=devel
ARG COMMIT=unknown
ARG BUILD_DATE=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN X=github.com/ctmpipe/ctmpipe/internal/buildinfo \
 && LDFLAGS="-s -w -X $X.version=${VERSION} -X $X.commit=${COMMIT} -X $X.date=${BUILD_DATE}" \
 && CGO_ENABLED=0 go build -trimpath -ldflags="$LDFLAGS" -o /out/app ./cmd/${CMD} \
 && CGO_ENABLED=0 go build -trimpath -ldflags="$LDFLAGS" -o /out/ctm ./cmd/ctm \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/healthcheck ./cmd/healthcheck \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
COPY --from=build /out/ctm /ctm
COPY --from=build /out/healthcheck /healthcheck
# all-in-one keeps its NATS store, store journal and dry-run file in
# DATA_DIR; the sender in the dryrun profile writes CAPI_DRYRUN_FILE here.
# The directory belongs to nonroot so that an empty named volume mounted on
# it (which takes the image directory's owner) is writable. ingest and the
# sender do not read DATA_DIR.
COPY --from=build --chown=65532:65532 /out/data /data
ENV DATA_DIR=/data
USER 65532:65532
ENTRYPOINT ["/app"]
