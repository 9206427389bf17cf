#!/usr/bin/env bash
# bench/profiles.sh - customer profile lookups over HTTP at scale (`make
# profile-bench`): generates the demo data set with many users, imports it,
# starts tandem on 127.0.0.1, and times GET /api/profiles/user_id:... for
# random known users with build/bench/profile_bench (one keep-alive
# connection, one request at a time; target p99 < 2 ms). Prints the
# server's resident memory per person as well.
#
#   bench/profiles.sh [--events N] [--users U] [--requests R] [--build DIR] [--data DIR]
#
# Defaults: 30,000,000 events, 3,000,000 users, 20,000 requests. --data DIR
# reuses (or keeps) a data directory: generation and import are skipped when
# DIR already holds events. Everything else lives under a temporary directory
# (TMPDIR) that is removed on exit; the server is stopped on exit.
set -euo pipefail

EVENTS=30000000
USERS=3000000
REQUESTS=20000
BUILD=build
DATA=
while [ $# -gt 0 ]; do
	case $1 in
	--events) EVENTS=$2; shift 2 ;;
	--users) USERS=$2; shift 2 ;;
	--requests) REQUESTS=$2; shift 2 ;;
	--build) BUILD=$2; shift 2 ;;
	--data) DATA=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "profiles: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done

TANDEM=$BUILD/tandem
BENCH=$BUILD/bench/profile_bench
for bin in "$TANDEM" "$BENCH"; do
	[ -x "$bin" ] || { echo "profiles: $bin is missing; run 'make all $BENCH'" >&2; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tandem-profiles.XXXXXX")
server_pid=
cleanup() {
	[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
	[ -z "$server_pid" ] || wait "$server_pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
[ -n "$DATA" ] || DATA=$tmp/data
mkdir -p "$DATA"

ids=$DATA/bench-user-ids.txt
if [ ! -d "$DATA/events" ] || [ ! -s "$ids" ]; then
	echo "profiles: generating $EVENTS events for $USERS users and importing them" >&2
	t0=$(date +%s)
	export TANDEM DATA
	# shellcheck disable=SC2016 # split's filter shell expands $FILE, $TANDEM, $DATA
	# the NDJSON goes to tandem import in parts (a part is ~3 GB on disk at most);
	# the userIds seen are kept for the lookups
	"$TANDEM" demo --generate --events "$EVENTS" --users "$USERS" --out - 2>/dev/null |
		tee >(grep -o '"userId":"[^"]*"' | sed 's/"userId":"\(.*\)"/user_id:\1/' |
			awk '!seen[$0]++' >"$tmp/ids.all") |
		split -l 4000000 -a 4 -d \
			--filter='cat >"$FILE.ndjson" && "$TANDEM" import "$FILE.ndjson" --data "$DATA" --quiet >>"$FILE.log" 2>&1; rc=$?; rm -f "$FILE.ndjson"; exit $rc' \
			- "$tmp/part-" ||
		{ cat "$tmp"/part-*.log >&2 2>/dev/null; echo "profiles: import failed" >&2; exit 1; }
	sleep 1 # the process substitution finishes writing
	shuf -n 50000 --random-source=<(yes) "$tmp/ids.all" >"$ids"
	echo "profiles: loaded in $(($(date +%s) - t0)) s, $(wc -l <"$tmp/ids.all") distinct userIds" >&2
fi

port=$((20000 + RANDOM % 20000))
"$TANDEM" serve --data "$DATA" --listen "127.0.0.1:$port" >"$tmp/serve.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 600); do
	curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
	kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/serve.log" >&2; exit 1; }
	sleep 0.1
done
persons=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 == "tandem_identity_persons" { print $2 }')
pids=$(curl -sf "http://127.0.0.1:$port/metrics" | awk '$1 == "tandem_store_persons" { print $2 }')
"$BENCH" --port "$port" --token-file "$DATA/admin-token" --ids "$ids" --requests "$REQUESTS"
rss_kb=$(awk '/^VmRSS:/ { print $2 }' "/proc/$server_pid/status")
echo "  data: $(du -sh "$DATA/events" | cut -f1) store, $persons persons ($pids person ids)"
awk -v rss="$rss_kb" -v p="$persons" -v q="$pids" 'BEGIN {
	printf "  server memory: %.0f MB resident after the run = %.0f bytes per person (%.0f per person id); profiles are computed on read, this is the identity graph, caches and the mapped segments touched\n",
		rss / 1024, rss * 1024 / p, rss * 1024 / q }'
