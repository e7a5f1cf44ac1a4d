#!/usr/bin/env bash
# Request size in a backlog, before and after, in one run: the sender built
# at BASE (a git revision) and the sender of this tree drain the same
# backlog of MANY_N conversions over ~1,000 businesses (334 per channel),
# against an instant and a 200 ms fake Graph, then run 10 s at 1,000/s for
# publish → POST latency. It prints each run's RESULT lines and the fake's
# requests and events per request; BENCHMARKS.md ("Request size in a
# backlog") divides them.
#
#   scripts/bench-backlog.sh 1ef4e8b            # MANY_N=100000, 2 rounds each
#   MANY_N=20000 ROUNDS=1 scripts/bench-backlog.sh HEAD~3
#   SENDER_ENV=LINGER_BACKLOG=5s scripts/bench-backlog.sh 1ef4e8b
#
# Needs go, git and redis-server (redis-cli). About 2 minutes per run.
source "$(dirname "$0")/bench-lib.sh"

BASE=${1:?usage: scripts/bench-backlog.sh BASE_REVISION}
MANY_N=${MANY_N:-100000}
ROUNDS=${ROUNDS:-2}

log "building this tree and $BASE"
build sender loadgen
mv "$BIN/sender" "$BIN/sender-new"
git -C "$ROOT" worktree add -q --detach "$WORK/base" "$BASE"
trap 'git -C "$ROOT" worktree remove --force "$WORK/base" 2>/dev/null || true; cleanup' EXIT
(cd "$WORK/base" && go build -o "$BIN/sender-base" ./cmd/sender)
machine

log "starting redis-server and NATS (JetStream on disk)"
start_redis redis-sender REDIS_URL
REDIS_PID=${PIDS[-1]}
mkdir -p "$WORK/jetstream"
"$BIN/loadgen" nats -addr 127.0.0.1:0 -store "$WORK/jetstream" >"$WORK/nats.log" 2>&1 &
NATS_PID=$!
PIDS+=($!)
NATS_URL=$(wait_for_line "$WORK/nats.log" '^nats listening on (.*)$')

one() {
	local name=$1 bin=$2
	shift 2
	log "$name"
	run "$BIN/loadgen" sender -nats "$NATS_URL" -redis "$REDIS_URL" -sender-bin "$bin" \
		-sender-log "$WORK/sender-$name.log" -procs "nats=$NATS_PID,redis=$REDIS_PID" -graph fake -no-raw \
		-businesses 334 -n "$MANY_N" -rounds "$ROUNDS" -rate 1000 -rate-d 10s "$@" >"$WORK/$name.txt" 2>&1 ||
		{ cat "$WORK/$name.txt"; return 1; }
	grep -E 'RESULT|events/request' "$WORK/$name.txt" | sed "s/^/$name: /"
}
# Base and new alternate, so that a noisy minute does not land on one side.
# Both call the same Marketing API version: an older base defaults to one
# that has expired since, which the fake Graph refuses as Meta does.
# SENDER_ENV adds settings to both (K=V,K=V; e.g. LINGER_BACKLOG=5s).
V=-sender-env=GRAPH_API_VERSION=v27.0${SENDER_ENV:+,$SENDER_ENV}
one base-instant "$BIN/sender-base" "$V"
one new-instant "$BIN/sender-new" "$V"
one base-200ms "$BIN/sender-base" "$V" -graph-latency 200ms
one new-200ms "$BIN/sender-new" "$V" -graph-latency 200ms
