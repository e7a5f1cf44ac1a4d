#!/usr/bin/env bash
# CPU profiles of what bounds the benchmarks (see BENCHMARKS.md):
#   1. ingest under closed-loop load (its maximum) and open loop at half of
#      it, each profiled alone: `loadgen ingest-server` is ingest wired as
#      cmd/ingest does, plus a CPU profile of the whole process;
#   2. the sender draining a full stream, in process (go test -bench Sender
#      -cpuprofile: sender, JetStream, Graph sink in one process; read it
#      focused on the sender's packages).
#
#   scripts/bench-profile.sh                   # 10 s each; profiles in /tmp/ctm-profiles
#   PROFILE_DIR=out scripts/bench-profile.sh -d 5s
#
# Needs go and redis-server (redis-cli). Bounded: about a minute.
source "$(dirname "$0")/bench-lib.sh"

OUT=${PROFILE_DIR:-/tmp/ctm-profiles}
mkdir -p "$OUT"
SECRET=profile-secret-$RANDOM

log "building"
build loadgen
machine
start_redis redis-profile REDIS_URL
REDIS_PID=${PIDS[-1]}

# breakdown KIND PROFILE prints the share of CPU samples (cumulative) of
# the functions that say where the time goes; KIND is ingest or sender.
breakdown() {
	(cd "$ROOT" && go tool pprof -top -cum -nodecount 100000 "$2" 2>/dev/null) | awk -v kind="$1" '
		/^Duration:/ { print "  " $0 }
		{ fn = $6; for (i = 7; i <= NF; i++) fn = fn " " $i; sub(/ \(inline\)$/, "", fn) }
		fn in want && !(fn in seen) { seen[fn] = 1; printf "  %7s  %s\n", $5, want[fn] }
		BEGIN {
			c = "github.com/ctmpipe/ctmpipe/"
			if (kind == "ingest") {
				want["net/http.(*conn).serve"] = "HTTP server, all of it (connection loop)"
				want["net/http.(*conn).readRequest"] = "  reading and parsing requests"
				want["net/http.(*response).finishRequest"] = "  flushing responses (write syscalls)"
				want[c "internal/ingest.(*Server).postWebhook"] = "  POST /webhook handler"
				want[c "internal/ingest.(*Server).readBody"] = "    read body"
				want[c "pkg/webhook.Verify"] = "    webhook.Verify (HMAC)"
				want[c "pkg/webhook.Parse"] = "    webhook.Parse (fastjson)"
				want[c "internal/ingest.(*Server).record"] = "    record: the store write, waiting included"
				want[c "internal/ingest.(*coalescer).flush"] = "      coalesced flush (one pipeline for many requests)"
				want[c "pkg/attribution.(*Store).Record"] = "      attribution.Store.Record"
			} else {
				want[c "internal/sender.(*Service).process"] = "sender: batch processing"
				want[c "internal/sender.(*batch).parse"] = "  parse and validate conversions"
				want[c "internal/sender.(*batch).join"] = "  context lookup (one Redis round trip)"
				want[c "internal/sender.(*batch).sendAll"] = "  send every dataset group"
				want[c "internal/sender.(*batch).claim"] = "    ledger claim (Redis)"
				want[c "internal/sender.(*batch).post"] = "    post to the Graph API"
				want[c "pkg/capi.(*Client).Send"] = "      capi.Client.Send"
				want["encoding/json.Marshal"] = "        encoding/json.Marshal"
				want[c "internal/sender.(*Service).markSent"] = "      ledger mark sent (Redis)"
				want[c "internal/sender.(*batch).ack"] = "    acks"
				want[c "internal/loadgen.(*Sink).serve"] = "Graph sink (harness)"
				want[c "internal/loadgen.RecordAll"] = "seeding contexts (harness, before the timed part)"
				want["github.com/nats-io/nats-server/v2/server.(*client).readLoop"] = "NATS server (in process)"
				want["github.com/nats-io/nats.go/jetstream.(*jetStream).publishMsgAsync"] = "publishing (harness, before the timed part)"
			}
			want["internal/poll.(*FD).Read"] = "socket reads"
			want["internal/poll.(*FD).Write"] = "socket writes"
			want["runtime.gcBgMarkWorker"] = "garbage collector (background marking)"
			want["runtime.mallocgc"] = "allocation"
			want["runtime.findRunnable"] = "scheduler looking for work (incl. netpoll, spinning)"
			want["runtime.netpoll"] = "  netpoll (epoll_wait)"
			want["runtime.futex"] = "futex (waking/parking threads)"
		}'
}

# profile_ingest NAME LOADGEN_FLAGS... runs a profiled ingest under one load.
profile_ingest() {
	local name=$1 pid addr
	shift
	: >"$WORK/ingest-$name.log"
	META_APP_SECRET=$SECRET META_VERIFY_TOKEN=profile REDIS_URL=$REDIS_URL INGEST_ADDR=127.0.0.1:0 LOG_LEVEL=info \
		"$BIN/loadgen" ingest-server -cpuprofile "$OUT/ingest-$name.prof" >"$WORK/ingest-$name.log" 2>&1 &
	pid=$!
	PIDS+=($pid)
	addr=$(wait_for_line "$WORK/ingest-$name.log" '.*"msg":"listening".*"addr":"([^"]+)".*')
	META_APP_SECRET=$SECRET run "$BIN/loadgen" ingest -url "http://$addr/webhook" -procs "ingest=$pid,redis=$REDIS_PID" \
		-redis "$REDIS_URL" -metrics "http://$addr/metrics" -wrk "" "$@" >"$WORK/load-$name.txt"
	cat "$WORK/load-$name.txt"
	kill -TERM "$pid"
	while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	log "ingest profile ($name): $OUT/ingest-$name.prof; share of samples by area:"
	breakdown ingest "$OUT/ingest-$name.prof"
}

log "ingest at its maximum (64 connections, closed loop)"
profile_ingest max -rounds 1 "$@"
MAX=$(sed -nE 's/^RESULT ingest_alone .*ingest_rps=([0-9]+).*/\1/p' "$WORK/load-max.txt")
log "ingest at half of $MAX/s (open loop)"
profile_ingest half -rounds 0 -rate $((MAX / 2)) "$@"

log "sender, in process, draining 50,000 conversions"
run go -C "$ROOT" test -run x -bench 'Sender$' -benchtime 50000x -cpuprofile "$OUT/sender.prof" \
	-o "$OUT/loadgen.test" ./internal/loadgen >"$WORK/sender-bench.txt"
grep -E '^Benchmark|^ok' "$WORK/sender-bench.txt"
log "sender profile: $OUT/sender.prof; share of samples by area (the process also runs NATS, the sink and the setup):"
breakdown sender "$OUT/sender.prof"
