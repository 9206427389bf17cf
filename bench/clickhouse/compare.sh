#!/usr/bin/env bash
# bench/clickhouse/compare.sh - tandem's trends, funnels and retention against
# ClickHouse's count/uniqExact, windowFunnel() and retention() on the same
# generated data: the figures must match exactly, and tandem's speed is
# reported next to ClickHouse's (target: at least 5x faster).
#
#   bench/clickhouse/compare.sh [--events N] [--users U] [--days D] [--end DATE]
#                               [--seed S] [--runs R] [--build DIR]
#
# Needs clickhouse-server and clickhouse-client (Debian 12: apt-get install
# clickhouse-server clickhouse-client, version 18.16). Without them it says so
# and exits 0: the comparison is skipped, nothing is downloaded.
#
# What it does (bench/README.md explains every step and the SQL mapping):
#  1. starts a throwaway clickhouse-server on 127.0.0.1 with its data in a
#     temporary directory, max_threads=2, stopped on exit;
#  2. generates the demo data set (`tandem demo --generate`), cuts every
#     timestamp to whole seconds (ClickHouse 18.16's windowFunnel takes only
#     DateTime), imports it into tandem (`tandem import`) and loads the same
#     events into a MergeTree table ordered by (person, ts);
#  3. runs each query on both, compares the figures (MISMATCH and exit 1 when
#     any differ), then times each side (best of --runs, after a warm-up run).
#
# Event names and persons follow tandem's store: a track's "event", "$page",
# "$screen", "$identify", "$group", "$alias" for the other message types; the
# person is the canonical person identity resolution gives the message once
# every message is in (merges count for past events), so ClickHouse gets
# tandem's merged persons as plain ids (the conversion is in bench/chcmp.c).
#
# Environment: CHCMP_PORT (ClickHouse's TCP port; default the first free one
# of 29100..29199), CHCMP_LOAD_TIMEOUT (seconds the generation and each
# import and INSERT may take; 1800 + 1 per 10,000 events), CHCMP_TIME_LIMIT
# (seconds the server may live; the load timeout + 3600), CHCMP_QUERY_TIMEOUT
# (seconds per query run, 900), CHCMP_CHUNK_LINES (NDJSON
# lines on disk at a time while importing, 4000000: ~2.9 GB), TMPDIR (where
# everything goes), CHCMP_ENGINE=memquery (tandem's engine over the NDJSON
# through the in-memory source instead of `tandem query`: checks the figures
# without the store; no speed ratio).
#
# Exit status: 0 all figures match (or ClickHouse is not installed), 1 a
# mismatch or a failure, 2 a usage error.
set -euo pipefail

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
}

EVENTS=2000000
USERS=
DAYS=90
END=2025-11-30
SEED=1
RUNS=3
BUILD=build
CHUNK_LINES=${CHCMP_CHUNK_LINES:-4000000}     # NDJSON lines on disk at a time during import
QUERY_TIMEOUT=${CHCMP_QUERY_TIMEOUT:-900}      # seconds per query run, either system
PORT=${CHCMP_PORT:-}                          # ClickHouse TCP port (default: a free one)
ENGINE=${CHCMP_ENGINE:-tandem}                # tandem | memquery (engine over the NDJSON, no store)

while [ $# -gt 0 ]; do
	case $1 in
	--events) EVENTS=$2; shift 2 ;;
	--users) USERS=$2; shift 2 ;;
	--days) DAYS=$2; shift 2 ;;
	--end) END=$2; shift 2 ;;
	--seed) SEED=$2; shift 2 ;;
	--runs) RUNS=$2; shift 2 ;;
	--build) BUILD=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "compare: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

log() { printf '%s\n' "$*" >&2; }
fail() { log "compare: $*"; exit 1; }

# --- prerequisites -----------------------------------------------------------

CH_SERVER=$(command -v clickhouse-server || true)
[ -n "$CH_SERVER" ] || [ ! -x /usr/sbin/clickhouse-server ] || CH_SERVER=/usr/sbin/clickhouse-server
CH_CLIENT=$(command -v clickhouse-client || true)
if [ -z "$CH_SERVER" ] || [ -z "$CH_CLIENT" ]; then
	log "compare: SKIPPED: clickhouse-server/clickhouse-client are not installed" \
		"(Debian: apt-get install clickhouse-server clickhouse-client)"
	exit 0
fi

TANDEM=$BUILD/tandem
CHCMP=$BUILD/bench/chcmp
for bin in "$TANDEM" "$CHCMP"; do
	[ -x "$bin" ] || fail "$bin is missing; build it with 'make all $BUILD/bench/chcmp'"
done
case $END in
[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]) ;;
*) fail "--end takes a date (YYYY-MM-DD), got '$END'" ;;
esac
case $ENGINE in tandem | memquery) ;; *) fail "CHCMP_ENGINE must be tandem or memquery" ;; esac
case $RUNS in '' | *[!0-9]* | 0) fail "--runs must be a positive number" ;; esac
case $DAYS in '' | *[!0-9]* | 0) fail "--days must be a positive number" ;; esac
# --events as the generator reads it: k, m, g are 1024-based
case $EVENTS in
*[kK]) EVENTS=$((${EVENTS%?} * 1024)) ;;
*[mM]) EVENTS=$((${EVENTS%?} * 1048576)) ;;
*[gG]) EVENTS=$((${EVENTS%?} * 1073741824)) ;;
esac
case $EVENTS in '' | *[!0-9]* | 0) fail "--events must be a positive number (k, m, g suffixes)" ;; esac
LOAD_TIMEOUT=${CHCMP_LOAD_TIMEOUT:-$((1800 + EVENTS / 10000))}
TIME_LIMIT=${CHCMP_TIME_LIMIT:-$((LOAD_TIMEOUT + 3600))}

# The query range is the generated period: the DAYS whole UTC days ending on END.
FROM=$(date -u -d "$END - $((DAYS - 1)) days" +%F)
TO=$END
TO_NEXT=$(date -u -d "$END + 1 day" +%F)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tandem-chcmp.XXXXXX")
ch_pid='' insert_pid=''
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	if [ -n "$insert_pid" ] && kill -0 "$insert_pid" 2>/dev/null; then
		kill -TERM "$insert_pid" 2>/dev/null || true
		wait "$insert_pid" 2>/dev/null || true
	fi
	if [ -n "$ch_pid" ] && kill -0 "$ch_pid" 2>/dev/null; then
		kill -TERM "$ch_pid" 2>/dev/null || true
		for _ in $(seq 1 300); do # up to 30 s for a clean shutdown
			kill -0 "$ch_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$ch_pid" 2>/dev/null || true
		wait "$ch_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }

# --- ClickHouse: a throwaway server on loopback --------------------------------

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "$PORT" ]; then
	for p in $(seq 29100 29199); do
		if port_free "$p"; then PORT=$p; break; fi
	done
	[ -n "$PORT" ] || fail "no free port in 29100..29199 for clickhouse-server (set CHCMP_PORT)"
fi

mkdir -p "$tmp/ch/data" "$tmp/ch/tmp" "$tmp/ch/user_files" "$tmp/ch/format_schemas"
cat >"$tmp/ch/config.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$tmp/ch/server.log</log><errorlog>$tmp/ch/server.err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <tcp_port>$PORT</tcp_port>
  <path>$tmp/ch/data/</path>
  <tmp_path>$tmp/ch/tmp/</tmp_path>
  <user_files_path>$tmp/ch/user_files/</user_files_path>
  <format_schema_path>$tmp/ch/format_schemas/</format_schema_path>
  <users_config>$tmp/ch/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>1073741824</mark_cache_size>
  <max_concurrent_queries>4</max_concurrent_queries>
</yandex>
EOF
cat >"$tmp/ch/users.xml" <<EOF
<?xml version="1.0"?>
<yandex>
  <profiles><default>
    <max_threads>2</max_threads>
    <max_memory_usage>16000000000</max_memory_usage>
    <use_uncompressed_cache>0</use_uncompressed_cache>
  </default></profiles>
  <users><default>
    <password></password>
    <networks><ip>127.0.0.1</ip></networks>
    <profile>default</profile><quota>default</quota>
  </default></users>
  <quotas><default></default></quotas>
</yandex>
EOF

log "compare: starting clickhouse-server ($("$CH_CLIENT" --version 2>/dev/null | grep -Eo '[0-9]+(\.[0-9]+)+' | head -n1)) on 127.0.0.1:$PORT, data in $tmp/ch, at most ${TIME_LIMIT}s"
timeout --signal=TERM --kill-after=30 "$TIME_LIMIT" \
	"$CH_SERVER" --config-file="$tmp/ch/config.xml" >"$tmp/ch/stdout" 2>&1 &
ch_pid=$!

ch() { timeout "$QUERY_TIMEOUT" "$CH_CLIENT" --host 127.0.0.1 --port "$PORT" "$@"; }

up=0
for _ in $(seq 1 300); do # up to 30 s
	if ch -q 'SELECT 1' >/dev/null 2>&1; then up=1; break; fi
	kill -0 "$ch_pid" 2>/dev/null || break
	sleep 0.1
done
if [ "$up" != 1 ]; then
	log "compare: clickhouse-server did not answer within 30 s; its log:"
	tail -n 20 "$tmp/ch/stdout" "$tmp/ch/server.err.log" >&2 2>/dev/null || true
	exit 1
fi
[ "$(ch -q "SELECT value FROM system.settings WHERE name = 'max_threads'")" = 2 ] ||
	fail "clickhouse-server did not take max_threads=2"

# --- data --------------------------------------------------------------------

ch -q "CREATE TABLE events (person UInt32, ts DateTime, event String)
	ENGINE = MergeTree ORDER BY (person, ts)"

gen_args=(--events "$EVENTS" --days "$DAYS" --end "$END" --seed "$SEED")
[ -z "$USERS" ] || gen_args+=(--users "$USERS")
log "compare: generating ${gen_args[*]}, importing into tandem and ClickHouse"

DATA=$tmp/tandem-data
NDJSON=$tmp/events.ndjson # kept only for CHCMP_ENGINE=memquery
mkfifo "$tmp/tsv.fifo"
# (the FIFO is opened inside the time limit: opening blocks until a writer comes)
# shellcheck disable=SC2016 # expanded by the inner shell
# The rows reach the INSERT only as fast as tandem imports each part, so the
# server must wait for them longer than its default 300 s.
timeout "$LOAD_TIMEOUT" bash -c 'exec "$0" --host 127.0.0.1 --port "$1" \
	--receive_timeout="$3" --query "INSERT INTO events FORMAT TabSeparated" <"$2"' \
	"$CH_CLIENT" "$PORT" "$tmp/tsv.fifo" "$LOAD_TIMEOUT" &
insert_pid=$!
t0=$(now_ns)
if [ "$ENGINE" = memquery ]; then
	timeout "$LOAD_TIMEOUT" "$TANDEM" demo --generate "${gen_args[@]}" --out - 2>"$tmp/gen.err" |
		"$CHCMP" convert --tsv "$tmp/tsv.fifo" >"$NDJSON" 2>"$tmp/convert.err" ||
		{ cat "$tmp/gen.err" "$tmp/convert.err" >&2; fail "generating or converting failed"; }
else
	# The NDJSON is ~720 bytes a line: it goes to disk and into tandem in parts of
	# CHUNK_LINES lines, each deleted once imported.
	export TANDEM DATA LOAD_TIMEOUT
	# shellcheck disable=SC2016 # split's filter shell expands $FILE, $TANDEM, ...
	timeout "$LOAD_TIMEOUT" "$TANDEM" demo --generate "${gen_args[@]}" --out - 2>"$tmp/gen.err" |
		"$CHCMP" convert --tsv "$tmp/tsv.fifo" 2>"$tmp/convert.err" |
		split -l "$CHUNK_LINES" -a 4 -d \
			--filter='cat >"$FILE.ndjson" && timeout "$LOAD_TIMEOUT" "$TANDEM" import "$FILE.ndjson" --data "$DATA" --quiet >>"$FILE.log" 2>&1; rc=$?; rm -f "$FILE.ndjson"; exit $rc' \
			- "$tmp/part-" ||
		{
			cat "$tmp/gen.err" "$tmp/convert.err" >&2
			cat "$tmp"/part-*.log >&2 2>/dev/null || true
			fail "generating, converting or importing failed"
		}
fi
wait "$insert_pid" || { insert_pid=; fail "the ClickHouse INSERT failed"; }
insert_pid=
if [ "$ENGINE" = tandem ]; then
	accepted=$(cat "$tmp"/part-*.log | sed -n 's/.*: \([0-9][0-9]*\) accepted.*/\1/p' |
		awk '{ n += $1 } END { print n + 0 }')
	[ "$accepted" = "$EVENTS" ] || {
		cat "$tmp"/part-*.log >&2
		fail "tandem import accepted $accepted events, expected $EVENTS"
	}
fi
load_ms=$(ms_since "$t0")
log "compare: $(tail -n 1 "$tmp/convert.err")"
ch -q "OPTIMIZE TABLE events FINAL"
ch_rows=$(ch -q "SELECT count() FROM events")
[ "$ch_rows" = "$EVENTS" ] || fail "ClickHouse holds $ch_rows rows, expected $EVENTS"
log "compare: loaded $EVENTS events in $((load_ms / 1000)) s; ClickHouse table:" \
	"$(ch -q "SELECT formatReadableSize(sum(bytes_on_disk)) FROM system.parts WHERE active AND table = 'events'")" \
	"in $(ch -q "SELECT count() FROM system.parts WHERE active AND table = 'events'") part(s)"
[ "$ENGINE" = memquery ] || log "compare: tandem data directory: $(du -sh "$DATA" | cut -f1)" \
	"(store $(du -sh "$DATA/events" | cut -f1), log $(du -sh "$DATA/wal" | cut -f1))"

# --- the queries ---------------------------------------------------------------
#
# Each query is built twice from the same parameters: tandem's JSON
# (docs/queries.md) and the ClickHouse SQL with the same semantics. The SQL
# prints the figures in the layout of `chcmp figures` (after ch_post).
#
# Mapping (see bench/README.md):
#  - time zone: the server runs in UTC and every date function gets the
#    query's zone explicitly; buckets are the local day toDate(ts, tz), the ISO
#    week toMonday(ts, tz) (Monday 00:00 local), the month toStartOfMonth(ts, tz);
#  - range: date_from..date_to are local dates, so ts >= local midnight of
#    date_from and ts < local midnight of the day after date_to;
#  - trend total: WITH TOTALS, the same aggregate over every row in range;
#  - funnel: windowFunnel(window seconds)(ts, step conditions) per person, over
#    the rows of the step events (other rows match no condition and change
#    nothing); persons at step k = persons with level >= k;
#  - retention (first_time): a person's cohort is the period of their first
#    start row ever (no range); cohorts from the period of date_from to the
#    period of date_to; retention(p = cohort AND start, p = cohort + k AND
#    return ...) per person, summed per cohort.

sq() { printf "'%s'" "$(printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/\\\\'/g")"; }
jq_str() { printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g')"; }
# ev_cond EVENT: the SQL condition for an event selector ("" = every event).
ev_cond() { if [ -z "$1" ]; then echo 1; else echo "event = $(sq "$1")"; fi; }
local_midnight() { echo "toDateTime($(sq "$1 00:00:00"), $(sq "$2"))"; }
range_cond() { echo "ts >= $(local_midnight "$FROM" "$1") AND ts < $(local_midnight "$TO_NEXT" "$1")"; }
bucket_fn() {
	case $1 in
	day) echo "toDate(ts, $(sq "$2"))" ;;
	week) echo "toMonday(ts, $(sq "$2"))" ;;
	month) echo "toStartOfMonth(ts, $(sq "$2"))" ;;
	esac
}
# seconds D: "7d", "1h", "30m", "45s" -> seconds
seconds() {
	local n=${1%[smhdw]}
	case $1 in
	*s) echo "$n" ;; *m) echo $((n * 60)) ;; *h) echo $((n * 3600)) ;;
	*d) echo $((n * 86400)) ;; *w) echo $((n * 604800)) ;;
	esac
}

names=() kinds=() tqs=() cqs=() steps_of=()

# trend NAME MATH EVENT INTERVAL TZ
trend() {
	local name=$1 math=$2 event=$3 interval=$4 tz=$5 agg
	case $math in count) agg='count()' ;; unique_persons) agg='uniqExact(person)' ;; esac
	names+=("$name")
	kinds+=(trend)
	steps_of+=("")
	tqs+=("{\"kind\":\"trends\",\"series\":[{\"event\":$(jq_str "$event"),\"math\":\"$math\"}],\"interval\":\"$interval\",\"date_from\":\"$FROM\",\"date_to\":\"$TO\",\"timezone\":$(jq_str "$tz")}")
	cqs+=("SELECT toString($(bucket_fn "$interval" "$tz")) AS bucket, $agg FROM events
WHERE $(ev_cond "$event") AND $(range_cond "$tz")
GROUP BY bucket WITH TOTALS ORDER BY bucket")
}

# funnel NAME WINDOW STEP...
funnel() {
	local name=$1 window=$2 json='' conds='' list='' levels='' i=0 s
	shift 2
	for s in "$@"; do
		i=$((i + 1))
		json+="${json:+,}{\"event\":$(jq_str "$s")}"
		conds+=", $(ev_cond "$s")"
		list+="${list:+, }$(sq "$s")"
		levels+="${levels:+, }countIf(level >= $i)"
	done
	names+=("$name")
	kinds+=(funnel)
	steps_of+=("$list")
	tqs+=("{\"kind\":\"funnel\",\"steps\":[$json],\"window\":\"$window\",\"order\":\"sequential\"}")
	cqs+=("SELECT $levels FROM (
  SELECT person, windowFunnel($(seconds "$window"))(ts$conds) AS level
  FROM events WHERE event IN ($list) GROUP BY person)")
}

# retention NAME PERIOD N START RETURN TZ   (first-time cohorts)
retention() {
	local name=$1 period=$2 n=$3 start=$4 ret=$5 tz=$6 conds sums k step next
	local pfn role='' anchor='' other=''
	pfn=$(bucket_fn "$period" "$tz")
	# ClickHouse 18.16's retention() sets, for each row, only the first
	# condition the row meets (later versions set all of them). When one row
	# can be both a start and a return row, each row is fed twice: once as the
	# anchor (first condition), once as a return.
	if [ -z "$start" ] || [ -z "$ret" ] || [ "$start" = "$ret" ]; then
		role=', arrayJoin([1, 0]) AS anchor'
		anchor='anchor AND '
		other='NOT anchor AND '
	fi
	conds="${anchor}p = cohort AND ($(ev_cond "$start"))"
	sums='sum(r[1])'
	for ((k = 0; k < n; k++)); do
		case $period in
		day) next="cohort + $k" ;; week) next="cohort + $((7 * k))" ;; month) next="addMonths(cohort, $k)" ;;
		esac
		conds+=", ${other}p = $next AND ($(ev_cond "$ret"))"
		sums+=", sum(r[$((k + 2))])"
	done
	step=$(bucket_fn "$period" "$tz" | sed 's/(ts,/(__D__,/')
	names+=("$name")
	kinds+=(retention)
	steps_of+=("")
	tqs+=("{\"kind\":\"retention\",\"start\":{\"event\":$(jq_str "$start")},\"return\":{\"event\":$(jq_str "$ret")},\"cohort\":\"first_time\",\"period\":\"$period\",\"periods\":$n,\"date_from\":\"$FROM\",\"date_to\":\"$TO\",\"timezone\":$(jq_str "$tz")}")
	cqs+=("SELECT toString(cohort) AS c, $sums FROM (
  SELECT person, cohort, retention($conds) AS r
  FROM (SELECT person, $pfn AS p, event$role FROM events
        WHERE ($(ev_cond "$start")) OR ($(ev_cond "$ret")))
  ANY INNER JOIN (
    SELECT person, min($pfn) AS cohort FROM events WHERE $(ev_cond "$start") GROUP BY person
    HAVING cohort >= ${step//__D__/$(local_midnight "$FROM" "$tz")}
       AND cohort <= ${step//__D__/$(local_midnight "$TO" "$tz")}
  ) USING person
  GROUP BY person, cohort)
GROUP BY c ORDER BY c")
}

trend "trend: Product Viewed, count per day" count "Product Viewed" day UTC
trend "trend: all events, unique persons per day" unique_persons "" day UTC
trend "trend: Order Completed, count per week, Paris" count "Order Completed" week Europe/Paris
funnel "funnel: view>add>checkout>order, 7d" 7d "Product Viewed" "Product Added" "Checkout Started" "Order Completed"
funnel "funnel: view>add>checkout>order, 1h" 1h "Product Viewed" "Product Added" "Checkout Started" "Order Completed"
funnel "funnel: view>add>order, 1d" 1d "Product Viewed" "Product Added" "Order Completed"
funnel "funnel: sent>opened>clicked>order, 3d" 3d "Email Sent" "Email Opened" "Email Link Clicked" "Order Completed"
retention "retention: first seen, any event, 8 weeks" week 8 "" "" UTC
retention "retention: Product Viewed>Order Completed, 8 weeks" week 8 "Product Viewed" "Order Completed" UTC
retention "retention: first seen, any event, 14 days" day 14 "" "" UTC

# ch_post KIND: ClickHouse's TSV -> the layout of `chcmp figures`.
ch_post() {
	case $1 in
	trend) # rows, then an empty line and the WITH TOTALS row
		awk -F'\t' 'BEGIN { OFS = "\t" } NF == 0 { t = 1; next }
			t { print "total", $2; next } $2 != 0 { print }' ;;
	funnel) awk -F'\t' '{ for (i = 1; i <= NF; i++) print i "\t" $i }' ;;
	retention) cat ;;
	esac
}

run_tandem() { # run_tandem QUERY_JSON
	if [ "$ENGINE" = memquery ]; then
		timeout "$QUERY_TIMEOUT" "$CHCMP" memquery "$NDJSON" "$1"
	else
		timeout "$QUERY_TIMEOUT" "$TANDEM" query --data "$DATA" --format json "$1"
	fi
}

best() { printf '%s\n' "$@" | sort -n | head -n1; }

mismatches=0
rows=() ratios_e=() ratios_p=()
for i in "${!names[@]}"; do
	name=${names[$i]} kind=${kinds[$i]} tq=${tqs[$i]} cq=${cqs[$i]}
	# correctness (also the warm-up run of each side)
	run_tandem "$tq" >"$tmp/tandem.json" 2>"$tmp/tandem.err" ||
		{ cat "$tmp/tandem.err" >&2; log "query: $tq"; fail "tandem failed on '$name'"; }
	"$CHCMP" figures <"$tmp/tandem.json" >"$tmp/tandem.tsv"
	ch -q "$cq" >"$tmp/ch.raw" 2>"$tmp/ch.err" ||
		{ cat "$tmp/ch.err" >&2; log "SQL: $cq"; fail "ClickHouse failed on '$name'"; }
	ch_post "$kind" <"$tmp/ch.raw" >"$tmp/ch.tsv"
	if cmp -s "$tmp/tandem.tsv" "$tmp/ch.tsv"; then
		verdict=match
		log "compare: $name: match ($(wc -l <"$tmp/ch.tsv") lines)"
	else
		verdict=MISMATCH
		mismatches=$((mismatches + 1))
		log "compare: MISMATCH in '$name' (< tandem, > ClickHouse):"
		diff "$tmp/tandem.tsv" "$tmp/ch.tsv" | head -n 20 >&2 || true
		log "  tandem query: $tq"
		log "  ClickHouse SQL: $cq"
		if [ "$kind" = funnel ]; then
			log "  persons with two different step events in one second (their order is" \
				"the step order in tandem, the stored order in ClickHouse 18.16):" \
				"$(ch -q "SELECT count() FROM (SELECT person, ts FROM events WHERE event IN (${steps_of[$i]}) GROUP BY person, ts HAVING uniqExact(event) > 1)")"
		fi
	fi
	# speed: best of RUNS, both warm
	tt=() ct=()
	for _ in $(seq 1 "$RUNS"); do
		t=$(now_ns)
		run_tandem "$tq" >/dev/null 2>&1 || fail "tandem failed on '$name' (timing run)"
		tt+=("$(ms_since "$t")")
		# the client's --time: from sending the query to the last result byte
		ch --time -q "$cq" >/dev/null 2>"$tmp/ch.time" || fail "ClickHouse failed on '$name' (timing run)"
		ct+=("$(awk '{ printf "%d", $1 * 1000 + 0.5 }' "$tmp/ch.time")")
	done
	p_ms=$(best "${tt[@]}") c_ms=$(best "${ct[@]}")
	if [ "$ENGINE" = memquery ]; then
		e_ms=n/a r_e=n/a r_p=n/a # memquery loads the whole file every run
	else
		# the same query in one process that opened the store once (as a server
		# does); its result must be the one checked above
		timeout "$QUERY_TIMEOUT" "$CHCMP" storequery "$DATA" "$RUNS" "$tq" \
			>"$tmp/engine.json" 2>"$tmp/engine.time" ||
			{ cat "$tmp/engine.time" >&2; fail "chcmp storequery failed on '$name'"; }
		"$CHCMP" figures <"$tmp/engine.json" | cmp -s - "$tmp/tandem.tsv" ||
			fail "'$name': the store opened in-process gave other figures than tandem query"
		e_ms=$(tail -n 1 "$tmp/engine.time")
		r_e=$(awk -v c="$c_ms" -v t="$e_ms" 'BEGIN { printf "%.1fx", c / (t > 0.001 ? t : 0.001) }')
		r_p=$(awk -v c="$c_ms" -v t="$p_ms" 'BEGIN { printf "%.1fx", c / (t > 0 ? t : 1) }')
		ratios_e+=("${r_e%x}")
		ratios_p+=("${r_p%x}")
	fi
	rows+=("$(printf '%-52s %-8s %9s %8s %8s %9s %9s' "$name" "$verdict" "$e_ms" "$p_ms" "$c_ms" "$r_e" "$r_p")")
done

if [ "$ENGINE" = memquery ]; then
	what='tandem engine over the NDJSON (no store, no timing)'
else
	what='tandem vs ClickHouse 18.16 (max_threads=2)'
fi
printf '\n%s events (%s days to %s, seed %s), %s; best of %s warm runs; load average %s\n' \
	"$EVENTS" "$DAYS" "$END" "$SEED" "$what" "$RUNS" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-52s %-8s %9s %8s %8s %9s %9s\n' query figures engine query CH CH/engine CH/query
printf '%s\n' "${rows[@]}"
if [ "$ENGINE" != memquery ]; then
	echo "(ms; engine: the query in a process that opened the store once, as a server answers"
	echo "it; query: the whole 'tandem query' command, process start and store open included;"
	echo "CH: clickhouse-client --time)"
	summary() { printf '%s\n' "$@" | awk '{ l += log($1); if (NR == 1 || $1 < m) m = $1 }
		END { printf "min %.1fx, geometric mean %.1fx", m, exp(l / NR) }'; }
	printf 'CH/engine: %s; CH/query: %s; target CH/engine >= 5x: %s\n' \
		"$(summary "${ratios_e[@]}")" "$(summary "${ratios_p[@]}")" \
		"$(printf '%s\n' "${ratios_e[@]}" | awk '$1 < 5 { miss = 1 } END { print miss ? "MISS" : "PASS" }')"
fi
if [ "$mismatches" -gt 0 ]; then
	log "compare: $mismatches query(ies) gave different figures"
	exit 1
fi
