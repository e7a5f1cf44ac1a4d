#!/usr/bin/env bash
# Benchmarks ingest against the bare echo baseline, in one run on this
# machine, and measures Redis memory per stored context. See BENCHMARKS.md.
#
#   scripts/bench-ingest.sh                  # defaults: 64 connections, 3 rounds of 10 s
#   scripts/bench-ingest.sh -d 5s -rounds 1  # extra flags go to `loadgen ingest`
#   REDIS_MEM_N=0 scripts/bench-ingest.sh    # skip the memory measurement
#
# Needs go and redis-server (redis-cli); uses wrk too when it is on PATH.
# Bounded: about rounds × 2 × (d + 1 s) × 2 generators + d, plus the memory
# run (~1 min for 1M contexts).
source "$(dirname "$0")/bench-lib.sh"

SECRET=bench-secret-$RANDOM
REDIS_MEM_N=${REDIS_MEM_N:-1000000}

log "building"
build ingest loadgen
machine

log "starting redis-server, ingest and the bare baseline"
start_redis redis-ingest REDIS_URL
REDIS_PID=${PIDS[-1]}
# /metrics is on the admin listener (ADMIN_ADDR), not the webhook one; without
# ADMIN_TOKEN it needs no token. Port 0: nothing else on the machine is in
# the way (the default 127.0.0.1:8081 may be another ingest's).
META_APP_SECRET=$SECRET META_VERIFY_TOKEN=bench REDIS_URL=$REDIS_URL INGEST_ADDR=127.0.0.1:0 ADMIN_ADDR=127.0.0.1:0 \
	LOG_LEVEL=info "$BIN/ingest" >"$WORK/ingest.log" 2>&1 &
INGEST_PID=$!
PIDS+=($!)
INGEST_ADDR=$(wait_for_line "$WORK/ingest.log" '.*"msg":"listening".*"addr":"([^"]+)".*')
ADMIN_ADDR=$(wait_for_line "$WORK/ingest.log" '.*"msg":"admin listening".*"addr":"([^"]+)".*')
"$BIN/loadgen" bare -addr 127.0.0.1:0 >"$WORK/bare.log" 2>&1 &
BARE_PID=$!
PIDS+=($!)
BARE_ADDR=$(wait_for_line "$WORK/bare.log" '^bare listening on (.*)$')
log "ingest on $INGEST_ADDR (admin $ADMIN_ADDR), bare on $BARE_ADDR, redis at $REDIS_URL"

log "load: bare vs ingest (closed loop), then ingest at half its maximum (open loop)"
META_APP_SECRET=$SECRET run "$BIN/loadgen" ingest -url "http://$INGEST_ADDR/webhook" \
	-bare-url "http://$BARE_ADDR/webhook" -procs "ingest=$INGEST_PID,bare=$BARE_PID,redis=$REDIS_PID" \
	-redis "$REDIS_URL" -metrics "http://$ADMIN_ADDR/metrics" -half "$@"

if grep -q '"level":"error"' "$WORK/ingest.log"; then
	log "ingest logged errors:"
	grep '"level":"error"' "$WORK/ingest.log" | tail -5 >&2
fi
echo "redis contexts stored: $(redis-cli -u "$REDIS_URL" dbsize)"

if [[ "$REDIS_MEM_N" != 0 ]]; then
	log "Redis memory per context: $REDIS_MEM_N contexts into a fresh redis-server"
	start_redis redis-mem MEM_URL
	run "$BIN/loadgen" redis-mem -redis "$MEM_URL" -n "$REDIS_MEM_N"
	run "$BIN/loadgen" redis-mem -redis "$MEM_URL" -n "$REDIS_MEM_N" -mix whatsapp=1 -flush
fi
