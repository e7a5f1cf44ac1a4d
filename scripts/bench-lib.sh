# Shared helpers of scripts/bench-*.sh (sourced, not run).
#
# Every process a script starts is recorded in PIDS and stopped on exit
# (normal end, error or Ctrl-C), and all state lives in a temporary WORK
# directory that is removed then too. Everything listens on 127.0.0.1.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ctm-bench.XXXXXX")
BIN=$WORK/bin
PIDS=()

cleanup() {
	local pid
	for pid in "${PIDS[@]}"; do
		kill -CONT "$pid" 2>/dev/null || true
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
	if [[ -n "${KEEP_WORK:-}" ]]; then
		echo "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '== %s\n' "$*" >&2; }

# run CMD... runs a command to completion like a foreground one, but as a
# recorded background process: a TERM or Ctrl-C to the script then runs
# cleanup at once (bash delays traps until a foreground child exits) and
# cleanup stops the command too.
run() {
	"$@" &
	local pid=$!
	PIDS+=($pid)
	wait "$pid"
}

# machine prints what the numbers were measured on.
machine() {
	local commit
	commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [[ -n "$(git -C "$ROOT" status --porcelain -- cmd internal pkg 2>/dev/null)" ]]; then
		commit="$commit+uncommitted"
	fi
	echo "code: $commit"
	echo "machine: nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\" load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" go=$(go env GOVERSION) redis=$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')"
	local load
	load=$(cut -d' ' -f1 /proc/loadavg)
	if awk -v l="$load" 'BEGIN { exit !(l > 1.5) }'; then
		echo "warning: load average $load > 1.5: other work shares the CPUs; ratios are still comparable, absolute numbers are not"
	fi
}

# build NAME... builds ./cmd/NAME into $BIN.
build() {
	local name
	for name in "$@"; do
		(cd "$ROOT" && go build -o "$BIN/$name" "./cmd/$name")
	done
}

# free_port prints a loopback TCP port nothing listens on right now.
free_port() {
	local port
	for _ in $(seq 1 100); do
		port=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "$port"
			return
		fi
	done
	echo "no free port found" >&2
	return 1
}

# start_redis NAME VAR starts a redis-server without persistence and sets
# the variable VAR to its URL. (Not a command substitution: the server must
# be started by this shell for cleanup to know its pid.)
start_redis() {
	local name=$1 port
	port=$(free_port)
	mkdir -p "$WORK/$name"
	redis-server --bind 127.0.0.1 --port "$port" --save "" --appendonly no --dir "$WORK/$name" \
		--logfile "$WORK/$name/redis.log" </dev/null >/dev/null 2>&1 &
	PIDS+=($!)
	for _ in $(seq 1 100); do
		if redis-cli -p "$port" ping >/dev/null 2>&1; then
			printf -v "$2" 'redis://127.0.0.1:%s/0' "$port"
			return
		fi
		sleep 0.1
	done
	echo "redis-server did not start: $(cat "$WORK/$name/redis.log")" >&2
	return 1
}

# wait_for_line FILE REGEX prints the first match of REGEX (sed -E, one
# group) in FILE, waiting up to 20 s for it to appear.
wait_for_line() {
	local file=$1 re=$2 got
	for _ in $(seq 1 200); do
		got=$(sed -nE "s/$re/\\1/p" "$file" 2>/dev/null | head -1)
		if [[ -n "$got" ]]; then
			echo "$got"
			return
		fi
		sleep 0.1
	done
	echo "timed out waiting for /$re/ in $file:" >&2
	cat "$file" >&2
	return 1
}
