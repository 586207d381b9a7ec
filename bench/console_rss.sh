#!/usr/bin/env bash
# What the console adds to the agent's memory: the agent's RSS idle with nobody looking,
# then with one console page open (its live stream and the poller's own connection to
# the store) for SECONDS_ seconds, measured from /proc/PID/status.
#
# Usage: bash bench/console_rss.sh       (SECONDS_ can be set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_=${SECONDS_:-30}
py=/usr/bin/python3; [ -x "$py" ] || py=python3
cargo build --release --locked -q
bin=$PWD/target/release/protowatch
work=$(mktemp -d)
agent=; curlpid=
cleanup() {
  [ -n "$curlpid" ] && { kill "$curlpid" 2>/dev/null || true; }
  [ -n "$agent" ] && { kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT
port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/p"
echo "2026-11-21 14:03:12 INFO [bench] opened" > "$work/p/det.log"
cat > "$work/config.json" <<JSON
{"instrument": "BENCH", "watch": [{"path": "p/*.log"}], "api": {"listen": "127.0.0.1:$port"}}
JSON
"$bin" --config "$work/config.json" --log-level warn run 2> "$work/agent.err" &
agent=$!
sleep 5
rss() { awk '/^VmRSS/{print $2}' /proc/"$agent"/status; }
ctx() { cat /proc/"$agent"/task/*/status | awk '/^voluntary_ctxt/{s+=$2} END{print s}'; }
r0=$(rss); c0=$(ctx); sleep "$SECONDS_"; r1=$(rss); c1=$(ctx)
token=$(cat "$work/.protowatch/api-token")
# The page's three fetches and its stream, as a browser makes them.
for p in alerts files outbox; do
  curl -s -o /dev/null -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/console/$p"
done
curl -sN -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/console/events" > /dev/null &
curlpid=$!
sleep 2
r2=$(rss); c2=$(ctx); sleep "$SECONDS_"; r3=$(rss); c3=$(ctx)
kill "$curlpid"; curlpid=
# The runtime's blocking threads (the poller's store reads) end 10 s after their last
# job; a thread that ends takes its count with it, so the window starts after that.
sleep 15; c4=$(ctx); sleep "$SECONDS_"; c5=$(ctx)
echo "idle, nobody looking: RSS ${r0} → ${r1} KiB; wake-ups ${SECONDS_} s: $((c1 - c0))"
echo "one console open:     RSS ${r2} → ${r3} KiB (+$((r3 - r1)) KiB); wake-ups ${SECONDS_} s: $((c3 - c2))"
echo "console closed again: wake-ups ${SECONDS_} s: $((c5 - c4))"
