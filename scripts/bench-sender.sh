#!/usr/bin/env bash
# Benchmarks the sender end to end against a raw JetStream fetch+ack loop on
# the same server, in one run on this machine. See BENCHMARKS.md.
#
#   scripts/bench-sender.sh                 # 3 rounds of 100,000, then 10 s at 1,000/s; fake Graph, then sink
#   scripts/bench-sender.sh -n 20000        # extra flags go to `loadgen sender`
#   GRAPHS=fake scripts/bench-sender.sh     # only the fake Graph that checks Meta's rules
#   SECTIONS=many scripts/bench-sender.sh   # only the many-businesses section (scale, latency hiding, isolation, RSS)
#   MANY_N=100000 RSS_N=1000000 ...         # its sizes (conversions per round; the RSS backlog over 10,000 businesses; 0 skips it)
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
SECTIONS=${SECTIONS:-raw many}
MANY_N=${MANY_N:-100000}
RSS_N=${RSS_N:-1000000}

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

if [[ " $SECTIONS " == *" raw "* ]]; then
	for graph in $GRAPHS; do
		log "sender vs raw fetch+ack, Graph API: $graph"
		run "$BIN/loadgen" sender -nats-url "$NATS_URL" -redis "$REDIS_URL" -sender-bin "$BIN/sender" \
			-sender-log "$WORK/sender-$graph.log" -procs "nats=$NATS_PID,redis=$REDIS_PID" -graph "$graph" "$@"
	done
fi

# Many businesses: the same sender, same run, at 8 and ~1,000 businesses
# (per channel: 3 and 334, over the three channels), an instant or a 200 ms
# Graph (log-normal, p99 500 ms), with none or some businesses hanging.
# BENCHMARKS.md divides the RESULT lines: scale, latency hiding, isolation.
many() {
	local name=$1
	shift
	log "many businesses: $name"
	run "$BIN/loadgen" sender -nats-url "$NATS_URL" -redis "$REDIS_URL" -sender-bin "$BIN/sender" \
		-sender-log "$WORK/sender-many-$name.log" -procs "nats=$NATS_PID,redis=$REDIS_PID" -graph fake -no-raw \
		-n "$MANY_N" -rounds 3 -rate 1000 -rate-d 10s "$@" >"$WORK/many-$name.txt" 2>&1 || { cat "$WORK/many-$name.txt"; return 1; }
	sed "s/^RESULT /RESULT $name /" "$WORK/many-$name.txt"
}
# Hung businesses' messages stay in the stream (in flight, then in doubt)
# and would come to the next sender: those runs go last.
if [[ " $SECTIONS " == *" many "* ]]; then
	many b8-instant -businesses 3 "$@"
	many b8-200ms -businesses 3 -graph-latency 200ms "$@"
	many b1000-instant -businesses 334 "$@"
	many b1000-200ms -businesses 334 -graph-latency 200ms "$@"
	if ((RSS_N > 0)); then # RSS_N=0 skips the backlog run
		log "many businesses: RSS at a backlog of $RSS_N over 10,000 businesses"
		run "$BIN/loadgen" sender -nats-url "$NATS_URL" -redis "$REDIS_URL" -sender-bin "$BIN/sender" \
			-sender-log "$WORK/sender-rss.log" -graph fake -no-raw -businesses 3334 -n "$RSS_N" -rounds 1 -rate 0 \
			-rss-every 10s -timeout 15m "$@" >"$WORK/many-rss.txt" 2>&1 || { cat "$WORK/many-rss.txt"; exit 1; }
		sed "s/^RESULT /RESULT rss /" "$WORK/many-rss.txt"
	fi
	many b8-200ms-hang1 -businesses 3 -graph-latency 200ms -hang 1 "$@"
	many b1000-200ms-hang3 -businesses 334 -graph-latency 200ms -hang 3 "$@"
fi
