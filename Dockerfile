# Multi-stage build of one of the binaries (ingest, sender, replay, all-in-one):
#   docker build --build-arg CMD=ingest -t ctmpipe-ingest .
# The result is a static binary on a distroless base, running as non-root.
FROM golang:1.26 AS build
ARG CMD=ingest
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/app ./cmd/${CMD}

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
USER nonroot:nonroot
ENTRYPOINT ["/app"]
