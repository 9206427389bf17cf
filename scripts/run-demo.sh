#!/usr/bin/env bash
# `make run`: serve a demo workspace on http://127.0.0.1:8080 (TANDEM_PORT to change).
# Creates ./demo-data on first use: a source and 90 days of generated journeys.
# While it runs, a trickle of live events (now and then an invalid or repeated
# one) keeps the dashboard's live chart and data health page moving
# (TANDEM_DEMO_LIVE=0 turns it off). docs/dashboard.md, "make run".
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/tandem}
data=${TANDEM_DEMO_DATA:-demo-data}
port=${TANDEM_PORT:-8080}

fresh=0
[ -d "$data" ] || fresh=1
"$bin" source list --data "$data" >/dev/null
key=$("$bin" source list --data "$data" | awk '$2 == "demo" { print $3 }')
if [ -z "$key" ]; then
	key=$("$bin" source create demo --data "$data")
fi
if [ "$fresh" = 1 ]; then
	# 90 days of generated shop and marketing journeys (docs/demo.md)
	echo "generating and importing the demo data set..."
	"$bin" demo --generate --events "${TANDEM_DEMO_EVENTS:-300000}" --users 20000 --days 90 \
		--out "$data/demo.ndjson" --costs "$data/demo-costs.csv"
	"$bin" import "$data/demo.ndjson" --data "$data" --source demo --quiet
	# the paid campaigns' costs, for ROI and ROAS (docs/attribution.md)
	"$bin" import costs "$data/demo-costs.csv" --data "$data" >/dev/null
	rm -f "$data/demo.ndjson" "$data/demo-costs.csv"
fi

"$bin" serve --data "$data" --listen "127.0.0.1:$port" &
pid=$!
live=
trap 'kill $pid $live 2>/dev/null; wait $pid 2>/dev/null' EXIT INT TERM
for _ in $(seq 50); do
	curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
	sleep 0.1
done

if [ "$fresh" = 1 ]; then
	now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
	curl -fs -u "$key:" -H 'Content-Type: application/json' "http://127.0.0.1:$port/v1/batch" -d @- >/dev/null <<JSON
{"batch":[
 {"type":"page","anonymousId":"anon-1","name":"Home","properties":{"url":"https://shop.example.com/?utm_source=newsletter&utm_campaign=autumn"},"timestamp":"$now"},
 {"type":"identify","anonymousId":"anon-1","userId":"user-1","traits":{"email":"ada@example.com","plan":"pro"},"timestamp":"$now"},
 {"type":"track","userId":"user-1","event":"Product Viewed","properties":{"product_id":"p-42","price":19.9},"timestamp":"$now"},
 {"type":"track","userId":"user-1","event":"Order Completed","properties":{"order_id":"o-1","revenue":39.8,"currency":"EUR"},"timestamp":"$now"}
]}
JSON
fi

# A few events a second from a handful of shoppers: every 20th request also
# carries an invalid message (quarantined) and resends one (deduplicated).
send_live() {
	local n=0 prev=
	while sleep 1; do
		n=$((n + 1))
		local u="live-$((RANDOM % 50))" id="live-$$-$n"
		local now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
		local extra=
		if [ $((n % 20)) = 0 ] && [ -n "$prev" ]; then
			extra=",{\"type\":\"track\",\"userId\":\"$u\",\"properties\":{\"note\":\"no event name\"}},{\"type\":\"track\",\"userId\":\"$u\",\"event\":\"Product Viewed\",\"messageId\":\"$prev\"}"
		fi
		curl -fs -o /dev/null -u "$key:" -H 'Content-Type: application/json' \
			"http://127.0.0.1:$port/v1/batch" -d "{\"batch\":[
{\"type\":\"page\",\"userId\":\"$u\",\"name\":\"Product\",\"messageId\":\"$id-p\",\"timestamp\":\"$now\"},
{\"type\":\"track\",\"userId\":\"$u\",\"event\":\"Product Viewed\",\"messageId\":\"$id-v\",\"timestamp\":\"$now\",\"properties\":{\"price\":$((RANDOM % 90 + 10))}}$extra]}" || true
		prev="$id-v"
	done
}
if [ "${TANDEM_DEMO_LIVE:-1}" != 0 ]; then
	send_live &
	live=$!
fi

cat <<MSG

tandem is running on http://127.0.0.1:$port (data: $data)
  dashboard:   http://127.0.0.1:$port/  (sign in with the admin token)
  admin token: $(cat "$data/admin-token")
  write key:   $key
  send an event:
    curl -u '$key:' -d '{"userId":"user-1","event":"Signed Up"}' http://127.0.0.1:$port/v1/track
  ask a question (a 4-step funnel over the 90 days of demo journeys):
    curl -H "Authorization: Bearer \$(cat $data/admin-token)" -d '{"kind":"funnel","steps":[{"event":"Product Viewed"},{"event":"Product Added"},{"event":"Checkout Started"},{"event":"Order Completed"}],"window":"7d"}' http://127.0.0.1:$port/api/query
    $bin query --data $data --format table '{"kind":"trends","series":[{"event":"Order Completed","math":"sum","property":"properties.revenue"}],"interval":"week","date_from":"$(date -u -d '-90 days' +%F)","date_to":"$(date -u +%F)"}'
  see what is stored:
    $bin export events --data $data --limit 10
Press Ctrl-C to stop.
MSG
wait $pid
