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
# The all-in-one image (CMD=all-in-one) listens beyond loopback only with
# META_APP_SECRET, META_VERIFY_TOKEN and ADMIN_TOKEN all set (without them it
# runs in development mode bound to 127.0.0.1, unreachable from outside the
# container), plus NATS_USER and NATS_PASSWORD for a NATS_ADDR other than
# 127.0.0.1, and REGISTRY_KEY (else it keeps a development key in /data);
# mount a volume on /data. docs/deployment.md has the command.
#
# .dockerignore drops .git, so Go cannot stamp the commit itself
# (-buildvcs): VERSION, COMMIT and BUILD_DATE reach the binaries through
# -ldflags -X, and `/app -version` and the build_info metric show them.
# The runtime base. Pin it by digest where you build release images
# (--build-arg BASE=gcr.io/distroless/static-debian12@sha256:...): the tag
# below moves with Debian's security updates.
ARG BASE=gcr.io/distroless/static-debian12:nonroot

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

FROM ${BASE}
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
