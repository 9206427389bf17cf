#!/usr/bin/env bash
# bench/run.sh BUILD_DIR - tandem's collector benchmarks (`make bench`).
#
#   (a) POST /v1/batch, 100 events/request, durability=sync   target >= 150,000 events/s
#   (b) POST /v1/track, keep-alive closed loop                 target >=  30,000 requests/s
#   (c) POST /v1/track, open loop at half of (b)'s rate        target p99 < 10 ms
#   (d) tandem import of a generated 2,000,000-line NDJSON     target >= 400,000 events/s
#   (e) POST /v1/batch, open loop at (a)'s target rate: the event store keeps
#       up (every request 2xx, the schedule met, the store caught up within 1 s)
#
# Each figure is the median of BENCH_RUNS runs. Everything runs on 127.0.0.1
# against a server started here on a fresh temporary data directory; the
# server is stopped and the temporary files deleted on exit. See
# bench/README.md for what each number means. Environment knobs (defaults):
#   BENCH_RUNS=3 BENCH_DURATION=10 BENCH_WARMUP=2 BENCH_CONNECTIONS=64
#   BENCH_THREADS=1 (loadgen threads) BENCH_IMPORT_EVENTS=2000000
#   BENCH_DURABILITY=sync BENCH_ONLY=abcde (subset to run) BENCH_STRICT=0
#   (1: exit 1 when a target is missed)
#
# Exit status: 0 when every benchmark ran cleanly (a MISS is a finding, not a
# failure, unless BENCH_STRICT=1); 1 when something broke (server did not
# start, non-2xx responses, connection errors, import failed).
set -euo pipefail

BUILD=${1:-build}
TANDEM=$BUILD/tandem
LOADGEN=$BUILD/bench/loadgen
GEN=$BUILD/bench/gen_ndjson

RUNS=${BENCH_RUNS:-3}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNS=${BENCH_CONNECTIONS:-64}
LG_THREADS=${BENCH_THREADS:-1}
BATCH=100
IMPORT_EVENTS=${BENCH_IMPORT_EVENTS:-2000000}
DURABILITY=${BENCH_DURABILITY:-sync}
ONLY=${BENCH_ONLY:-abcde}
STRICT=${BENCH_STRICT:-0}

for bin in "$TANDEM" "$LOADGEN" "$GEN"; do
	if [ ! -x "$bin" ]; then
		echo "bench: $bin is missing; build everything with 'make bench'" >&2
		exit 1
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tandem-bench.XXXXXX")
server_pid=
broken=0
rows=()

stop_server() {
	[ -n "$server_pid" ] || return 0
	if kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 1 150); do # up to 15 s for a clean shutdown
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$server_pid" 2>/dev/null; then
			echo "bench: server did not stop within 15 s of SIGTERM; killing it" >&2
			kill -KILL "$server_pid" 2>/dev/null || true
		fi
	fi
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_server
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# kv LINE KEY: the value of KEY=VALUE in a loadgen RESULT line.
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$1"; }

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
	if (NR == 0) print 0; else if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2 }'; }

ge() { awk -v x="$1" -v t="$2" 'BEGIN { exit !(x >= t) }'; }
lt() { awk -v x="$1" -v t="$2" 'BEGIN { exit !(x < t) }'; }
fmt0() { awk -v x="$1" 'BEGIN { s = sprintf("%.0f", x); n = length(s); o = "";
	for (i = 1; i <= n; i++) { o = o substr(s, i, 1); if ((n - i) % 3 == 0 && i < n) o = o "," }
	print o }'; }

# row NAME MEDIAN RUNS TARGET VERDICT
row() { rows+=("$(printf '%-40s %-22s %-34s %-20s %s' "$1" "$2" "$3" "$4" "$5")"); }

verdict() { # verdict OK CLEAN
	if [ "$2" != 1 ]; then echo "INVALID (errors, see above)"; elif [ "$1" = 1 ]; then echo PASS; else echo MISS; fi
}

start_server() {
	local data=$1
	"$TANDEM" serve --data "$data" --listen 127.0.0.1:0 --durability "$DURABILITY" \
		>"$tmp/serve.out" 2>"$tmp/serve.err" &
	server_pid=$!
	port=
	for _ in $(seq 1 200); do # up to 20 s (WAL replay on a fresh dir is instant)
		port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9][0-9]*\).*|\1|p' \
			"$tmp/serve.out" | head -n1)
		[ -n "$port" ] && return 0
		if ! kill -0 "$server_pid" 2>/dev/null; then
			log "bench: tandem serve exited before listening:"
			tail -n 20 "$tmp/serve.err" "$tmp/serve.out" >&2 || true
			server_pid=
			exit 1
		fi
		sleep 0.1
	done
	log "bench: tandem serve printed no 'listening on' line within 20 s"
	exit 1
}

check_server() {
	if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then
		log "bench: the server died during the benchmark; last lines of its log:"
		tail -n 20 "$tmp/serve.err" >&2 || true
		server_pid=
		exit 1
	fi
}

# run_loadgen NAME ARGS...: one loadgen run; prints its RESULT line on stdout.
run_loadgen() {
	local name=$1 out
	shift
	out="$tmp/$name.txt"
	local rc=0
	"$LOADGEN" --key "$KEY" --connections "$CONNS" --threads "$LG_THREADS" \
		--warmup "$WARMUP" --duration "$DURATION" "$@" >"$out" 2>&1 || rc=$?
	check_server
	local res
	res=$(grep '^RESULT ' "$out" || true)
	if [ -z "$res" ]; then
		log "bench: loadgen failed (exit $rc):"
		cat "$out" >&2
		exit 1
	fi
	if [ "$(kv "$res" non2xx)" != 0 ] || [ "$(kv "$res" errors)" != 0 ]; then
		log "bench: $name had non-2xx responses or errors:"
		grep -E '^(status|errors|note)' "$out" >&2 || true
	fi
	printf '%s\n' "$res"
}

# store_lag: the store's lag in events right now ("" if /metrics did not answer).
store_lag() {
	curl -fs "$base/metrics" | awk '$1 == "tandem_store_lag_records" { print $2 }'
}

# thread_cpu NAME: CPU seconds the server's threads called NAME have used
# (utime + stime from /proc; the store's are td-apply and td-flush).
thread_cpu() {
	local hz
	hz=$(getconf CLK_TCK)
	cat /proc/"$server_pid"/task/*/stat 2>/dev/null |
		awk -v n="($1)" -v hz="$hz" '$2 == n { t += $14 + $15 } END { printf "%.2f", t / hz }'
}

# store_catchup: how far the event store is behind the WAL when a run ends
# and how long it takes to catch up (bounded: 120 s).
store_catchup() {
	local t0 lag first=""
	t0=$(date +%s.%N)
	for _ in $(seq 1200); do
		lag=$(curl -fs "$base/metrics" | awk '$1 == "tandem_store_lag_records" { print $2 }')
		[ -n "$first" ] || first=${lag:-?}
		[ "${lag:-1}" = 0 ] && break
		sleep 0.1
	done
	printf 'store behind by %s events at the end, caught up %s s later' "$first" \
		"$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
}

# account RESULT: adds a run's acknowledged and sent events to the totals that
# the export check compares with what the server stored.
acked_events=0
sent_events=0
account() {
	local b resp non2xx sent
	b=$(kv "$1" batch)
	resp=$(kv "$1" responses)
	non2xx=$(kv "$1" non2xx)
	sent=$(kv "$1" sent)
	acked_events=$((acked_events + (${resp:-0} - ${non2xx:-0}) * ${b:-1}))
	sent_events=$((sent_events + ${sent:-0} * ${b:-1}))
}

is_clean() { [ "$(kv "$1" non2xx)" = 0 ] && [ "$(kv "$1" errors)" = 0 ]; }

wants() { [[ $ONLY == *"$1"* ]]; }

log "tandem benchmarks: $(nproc) cores, durability=$DURABILITY, $CONNS connections," \
	"$LG_THREADS loadgen thread(s), $RUNS runs x ${DURATION}s (+${WARMUP}s warmup)"
log "temporary directory: $tmp"
if [ "$(stat -f -c %T "$tmp" 2>/dev/null)" = tmpfs ]; then
	log "bench: WARNING: $tmp is on tmpfs, where fsync costs nothing; durability=sync" \
		"figures will be optimistic. Set TMPDIR to a directory on a real disk."
fi
# The loadgen and the server share the machine; anything else running skews the figures.
load=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
if awk -v l="$load" 'BEGIN { exit !(l > 0.5) }'; then
	log "bench: WARNING: load average is $load before starting; other processes are using" \
		"the CPU and the figures below will be low"
fi

rps_b=
if wants a || wants b || wants c || wants e; then
	start_server "$tmp/http-data"
	KEY=$("$TANDEM" source create bench --data "$tmp/http-data" | tr -d '\r' |
		grep -o 'wk_[A-Za-z0-9_-]*' | head -n1 || true)
	if [ -z "$KEY" ]; then
		log "bench: 'tandem source create bench --data DIR' printed no write key (wk_...)"
		exit 1
	fi
	log "server pid $server_pid on 127.0.0.1:$port, source 'bench' write key ${KEY:0:8}..."
	base=http://127.0.0.1:$port

	# Smoke test: one connection, half a second; must get 2xx and no errors.
	smoke=$("$LOADGEN" --key "$KEY" --url "$base/v1/track" --connections 1 --warmup 0 \
		--duration 0.5 2>&1 || true)
	res=$(grep '^RESULT ' <<<"$smoke" || true)
	if [ -z "$res" ] || ! is_clean "$res" || [ "$(kv "$res" requests)" = 0 ]; then
		log "bench: smoke test against $base/v1/track failed:"
		printf '%s\n' "$smoke" >&2
		exit 1
	fi
	account "$res"

	if wants e; then
		# (a)'s target rate on a fixed schedule; the applier must absorb it
		# while the collector takes it: no 429 (its backlog limit), no lag
		# that outlives the run by more than the 1 s visibility promise.
		# It runs first, on an idle store: after (a) the store is still
		# merging what (a) left, which is not the steady state.
		erate=150000
		got=() maxlag=() catch=() cpu_a=() cpu_f=() clean=1 ok=1
		for i in $(seq 1 "$RUNS"); do
			(while :; do store_lag; sleep 0.2; done >"$tmp/lag-e$i.txt" 2>/dev/null) &
			sampler=$!
			a0=$(thread_cpu td-apply)
			f0=$(thread_cpu td-flush)
			r=$(run_loadgen "e$i" --url "$base/v1/batch" --batch "$BATCH" \
				--rate "$((erate / BATCH))")
			kill "$sampler" 2>/dev/null || true
			wait "$sampler" 2>/dev/null || true
			account "$r"
			# a 429 is the store falling behind: a miss, not a broken run
			[ "$(kv "$r" errors)" = 0 ] || clean=0
			[ "$(kv "$r" non2xx)" = 0 ] || ok=0
			t0=$(date +%s.%N)
			for _ in $(seq 1200); do
				[ "$(store_lag)" = 0 ] && break
				sleep 0.05
			done
			c=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
			ml=$(sort -n "$tmp/lag-e$i.txt" | tail -n1)
			# CPU per acknowledged event (warmup included: it is applied too)
			ev=$(( ($(kv "$r" responses) - $(kv "$r" non2xx)) * BATCH ))
			us_a=$(awk -v a="$a0" -v b="$(thread_cpu td-apply)" -v n="$ev" \
				'BEGIN { printf "%.2f", n ? (b - a) * 1e6 / n : 0 }')
			us_f=$(awk -v a="$f0" -v b="$(thread_cpu td-flush)" -v n="$ev" \
				'BEGIN { printf "%.2f", n ? (b - a) * 1e6 / n : 0 }')
			cpu_a+=("$us_a")
			cpu_f+=("$us_f")
			got+=("$(kv "$r" eps)")
			maxlag+=("${ml:-0}")
			catch+=("$c")
			ge "$(kv "$r" eps)" "$((erate * 98 / 100))" || ok=0
			lt "$c" 1 || ok=0
			log "(e) run $i at $(fmt0 $erate) events/s: got $(fmt0 "$(kv "$r" eps)") events/s," \
				"non-2xx $(kv "$r" non2xx), store lag at most $(fmt0 "${ml:-0}") events," \
				"caught up ${c} s after the run; store CPU per event: apply $us_a us," \
				"flush $us_f us"
		done
		[ $clean = 1 ] || broken=1
		runs=$(for v in "${got[@]}"; do printf '%s ' "$(fmt0 "$v")"; done)
		row "(e) store keeps up, open loop $((erate / 1000))k/s" \
			"$(fmt0 "$(median "${got[@]}")") events/s" "$runs" \
			">= 98%, all 2xx, lag < 1 s" "$(verdict $ok $clean)"
		row "    store lag during runs (median of max)" \
			"$(fmt0 "$(median "${maxlag[@]}")") events" \
			"caught up $(median "${catch[@]}") s after" "" ""
		row "    store CPU per event (median)" \
			"$(median "${cpu_a[@]}") + $(median "${cpu_f[@]}") us" "apply + flush threads" "" ""
	fi

	if wants a; then
		eps=() p99=() clean=1
		for i in $(seq 1 "$RUNS"); do
			r=$(run_loadgen "a$i" --url "$base/v1/batch" --batch "$BATCH")
			account "$r"
			is_clean "$r" || clean=0
			eps+=("$(kv "$r" eps)")
			p99+=("$(kv "$r" p99_ms)")
			log "(a) run $i: $(fmt0 "$(kv "$r" eps)") events/s, $(kv "$r" rps) req/s," \
				"p50 $(kv "$r" p50_ms) ms, p99 $(kv "$r" p99_ms) ms," \
				"$(store_catchup)"
		done
		m=$(median "${eps[@]}")
		ok=0
		ge "$m" 150000 && ok=1
		[ $clean = 1 ] || broken=1
		runs=$(for v in "${eps[@]}"; do printf '%s ' "$(fmt0 "$v")"; done)
		row "(a) /v1/batch x$BATCH, $DURABILITY, closed loop" "$(fmt0 "$m") events/s" \
			"$runs" ">= 150,000" "$(verdict $ok $clean)"
		row "    request latency (median of runs)" "p99 $(median "${p99[@]}") ms" "" "" ""
	fi

	if wants b || wants c; then
		rps=() p99=() p50=() clean=1
		for i in $(seq 1 "$RUNS"); do
			r=$(run_loadgen "b$i" --url "$base/v1/track")
			account "$r"
			is_clean "$r" || clean=0
			rps+=("$(kv "$r" rps)")
			p50+=("$(kv "$r" p50_ms)")
			p99+=("$(kv "$r" p99_ms)")
			log "(b) run $i: $(fmt0 "$(kv "$r" rps)") req/s, p50 $(kv "$r" p50_ms) ms," \
				"p99 $(kv "$r" p99_ms) ms"
		done
		rps_b=$(median "${rps[@]}")
		ok=0
		ge "$rps_b" 30000 && ok=1
		[ $clean = 1 ] || broken=1
		runs=$(for v in "${rps[@]}"; do printf '%s ' "$(fmt0 "$v")"; done)
		if wants b; then
			row "(b) /v1/track, closed loop" "$(fmt0 "$rps_b") req/s" "$runs" ">= 30,000" \
				"$(verdict $ok $clean)"
			row "    latency (median of runs)" \
				"p50 $(median "${p50[@]}") p99 $(median "${p99[@]}") ms" "" "" ""
		fi
	fi

	if wants c; then
		rate=$(awk -v r="$rps_b" 'BEGIN { printf "%.0f", r / 2 }')
		if [ "$rate" -lt 1 ]; then
			rate=1
		fi
		p99=() p50=() p999=() got=() clean=1
		for i in $(seq 1 "$RUNS"); do
			r=$(run_loadgen "c$i" --url "$base/v1/track" --rate "$rate")
			account "$r"
			is_clean "$r" || clean=0
			p50+=("$(kv "$r" p50_ms)")
			p99+=("$(kv "$r" p99_ms)")
			p999+=("$(kv "$r" p999_ms)")
			got+=("$(kv "$r" rps)")
			log "(c) run $i at $rate req/s: got $(fmt0 "$(kv "$r" rps)") req/s," \
				"p50 $(kv "$r" p50_ms) p99 $(kv "$r" p99_ms) p99.9 $(kv "$r" p999_ms)" \
				"max $(kv "$r" max_ms) ms, backlog $(kv "$r" backlog)"
		done
		m=$(median "${p99[@]}")
		ok=0
		lt "$m" 10 && ok=1
		[ $clean = 1 ] || broken=1
		runs=$(for v in "${p99[@]}"; do printf '%s ' "$v"; done)
		runs="$runs(ms)"
		row "(c) /v1/track, open loop $(fmt0 "$rate")/s" "p99 $m ms" "$runs" "< 10 ms" \
			"$(verdict $ok $clean)"
		row "    (latency from scheduled send time)" \
			"p50 $(median "${p50[@]}") p99.9 $(median "${p999[@]}")" \
			"achieved $(fmt0 "$(median "${got[@]}")") req/s" "" ""
	fi
	stop_server

	# Every acknowledged event must be stored, and nothing beyond what was sent
	# (requests cut off at the end may be stored without an acknowledgement).
	stored=$("$TANDEM" export events --data "$tmp/http-data" 2>"$tmp/export.err" | wc -l) || true
	ok=0
	[ "$stored" -ge "$acked_events" ] && [ "$stored" -le "$sent_events" ] && ok=1
	[ $ok = 1 ] || {
		log "bench: export check failed: stored $stored, acknowledged $acked_events, sent $sent_events"
		tail -n 5 "$tmp/export.err" >&2 || true
		broken=1
	}
	row "check: acknowledged events stored" "$(fmt0 "$stored") stored" \
		"$(fmt0 "$acked_events") acked, $(fmt0 "$sent_events") sent" "acked<=stored<=sent" \
		"$([ $ok = 1 ] && echo PASS || echo FAIL)"
fi

if wants d; then
	# The import gets the machine to itself: the server is stopped by now.
	file="$tmp/import.ndjson"
	log "(d) generating $IMPORT_EVENTS messages ..."
	"$GEN" --events "$IMPORT_EVENTS" --seed 42 --out "$file" 2>"$tmp/gen.err" || {
		cat "$tmp/gen.err" >&2
		exit 1
	}
	cat "$tmp/gen.err" >&2
	eps=() clean=1
	for i in $(seq 1 "$RUNS"); do
		dir="$tmp/import-data-$i"
		"$TANDEM" source create bench --data "$dir" >/dev/null 2>"$tmp/source.err" || {
			cat "$tmp/source.err" >&2
			exit 1
		}
		t0=$(date +%s.%N)
		rc=0
		"$TANDEM" import "$file" --data "$dir" --source bench >"$tmp/import.out" \
			2>"$tmp/import.err" || rc=$?
		t1=$(date +%s.%N)
		summary=$(grep -m1 '^imported' "$tmp/import.out" || true)
		accepted=$(sed -n 's/.*: \([0-9][0-9]*\) accepted.*/\1/p' <<<"$summary")
		if [ $rc != 0 ] || [ "$accepted" != "$IMPORT_EVENTS" ]; then
			log "bench: import run $i: exit $rc, expected $IMPORT_EVENTS accepted:"
			cat "$tmp/import.out" >&2
			tail -c 2000 "$tmp/import.err" >&2 || true
			clean=0
		fi
		v=$(awk -v n="$IMPORT_EVENTS" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", n / (b - a) }')
		eps+=("$v")
		log "(d) run $i: $(fmt0 "$v") events/s ($(awk -v a="$t0" -v b="$t1" \
			'BEGIN { printf "%.2f", b - a }') s); $summary"
		rm -rf "$dir"
	done
	m=$(median "${eps[@]}")
	ok=0
	ge "$m" 400000 && ok=1
	[ $clean = 1 ] || broken=1
	runs=$(for v in "${eps[@]}"; do printf '%s ' "$(fmt0 "$v")"; done)
	row "(d) tandem import, $(fmt0 "$IMPORT_EVENTS") lines" "$(fmt0 "$m") events/s" "$runs" \
		">= 400,000" "$(verdict $ok $clean)"
	rm -f "$file"
fi

echo
load_after=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0)
echo "tandem benchmarks - medians of $RUNS runs; $(nproc) cores shared by server and loadgen;" \
	"load average before $load, after $load_after (the benchmark itself adds about 2-3)"
printf '%-40s %-22s %-34s %-20s %s\n' "benchmark" "median" "runs" "target" "result"
for r in "${rows[@]}"; do
	printf '%s\n' "$r"
done

status=0
[ $broken = 0 ] || status=1
if [ "$STRICT" = 1 ] && printf '%s\n' "${rows[@]}" | grep -q ' MISS$'; then
	status=1
fi
exit $status
