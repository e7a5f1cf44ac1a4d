#!/usr/bin/env bash
# Benchmarks the sender end to end against a raw JetStream fetch+ack loop on
# the same server, in one run on this machine. See BENCHMARKS.md.
#
#   scripts/bench-sender.sh                 # 3 rounds of 100,000, then 10 s at 1,000/s; fake Graph, then sink
#   scripts/bench-sender.sh -n 20000        # extra flags go to `loadgen sender`
#   GRAPHS=fake scripts/bench-sender.sh     # only the fake Graph that checks Meta's rules
#
# NATS: `loadgen nats` runs the nats-server module go.mod pins, in its own
# process. That needs no nats-server binary and no download (go run
# nats-server@version would fetch it unless the module cache has every
# dependency), and keeps the server's CPU out of the generator's process,
# as a real deployment would.
#
# Needs go and redis-server (redis-cli). Bounded: about a minute per graph.
source "$(dirname "$0")/bench-lib.sh"

GRAPHS=${GRAPHS:-fake sink}

log "building"
build sender loadgen
machine

log "starting redis-server and NATS (JetStream on disk)"
start_redis redis-sender REDIS_URL
REDIS_PID=${PIDS[-1]}
mkdir -p "$WORK/jetstream"
"$BIN/loadgen" nats -addr 127.0.0.1:0 -store "$WORK/jetstream" >"$WORK/nats.log" 2>&1 &
NATS_PID=$!
PIDS+=($!)
NATS_URL=$(wait_for_line "$WORK/nats.log" '^nats listening on (.*)$')
log "nats at $NATS_URL, redis at $REDIS_URL"

for graph in $GRAPHS; do
	log "sender vs raw fetch+ack, Graph API: $graph"
	run "$BIN/loadgen" sender -nats "$NATS_URL" -redis "$REDIS_URL" -sender-bin "$BIN/sender" \
		-sender-log "$WORK/sender-$graph.log" -procs "nats=$NATS_PID,redis=$REDIS_PID" -graph "$graph" "$@"
done
