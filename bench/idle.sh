#!/usr/bin/env bash
# The agent at rest: FILES protocol files, each its own `watch` entry (one thread each),
# nothing written for SECONDS_. Reports the CPU time it used (user+sys, from
# /proc/PID/stat), its peak RSS (VmHWM) and its wake-ups: voluntary context switches of
# each thread over the window (/proc/PID/task/*/status), so one sees which thread wakes
# and how often. MODE is notify (default) or poll.
#
# Usage: bash bench/idle.sh          (FILES, SECONDS_, MODE can be set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-10}
SECONDS_=${SECONDS_:-60}
MODE=${MODE:-notify}

py=/usr/bin/python3; [ -x "$py" ] || py=python3
cargo build --release --locked -q
bin=$PWD/target/release/protowatch
work=$(mktemp -d)
agent=
cleanup() {
  [ -n "$agent" ] && { kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/p"
watch=""
for i in $(seq "$FILES"); do
  echo "2026-11-21 14:03:12 INFO [bench] file $i opened" > "$work/p/det$i.log"
  watch+="${watch:+, }{\"path\": \"p/det$i.log\", \"mode\": \"$MODE\"}"
done
cat > "$work/config.json" <<JSON
{
  "instrument": "BENCH",
  "telegram": {"bot-id": "123456:BENCH-token", "channel-id": "-100", "api-url": "http://127.0.0.1:9"},
  "watch": [$watch],
  "api": {"listen": "127.0.0.1:$port"}
}
JSON
"$bin" --config "$work/config.json" --log-level warn run 2> "$work/agent.err" &
agent=$!
sleep 5   # start-up: threads spawned, files opened, first scans done

# Per thread "name voluntary nonvoluntary", and the process's user+sys clock ticks.
threads() {
  for t in /proc/"$agent"/task/*; do
    printf '%s %s %s\n' "$(tr ' ' _ < "$t/comm")" \
      "$(awk '/^voluntary_ctxt/{print $2}' "$t/status")" \
      "$(awk '/^nonvoluntary_ctxt/{print $2}' "$t/status")"
  done | sort | awk '{v[$1]+=$2; n[$1]+=$3; c[$1]++} END {for (k in v) print k, c[k], v[k], n[k]}' | sort
}
ticks() { awk '{print $14 + $15}' /proc/"$agent"/stat; }
threads > "$work/before"; t0=$(ticks)
sleep "$SECONDS_"
threads > "$work/after"; t1=$(ticks)
hz=$(getconf CLK_TCK)
echo "== $FILES files, $MODE mode, ${SECONDS_} s idle; load: $(uptime | sed 's/.*load/load/')"
echo "CPU (user+sys): $(awk -v a="$t0" -v b="$t1" -v hz="$hz" 'BEGIN{printf "%.2f s", (b-a)/hz}')"
echo "peak RSS: $(awk '/^VmHWM/{print $2, $3}' /proc/"$agent"/status); RSS now: $(awk '/^VmRSS/{print $2, $3}' /proc/"$agent"/status)"
echo "wake-ups (context switches) per thread name over the window:"
join "$work/before" "$work/after" | awk -v s="$SECONDS_" \
  '{w = ($5 - $3) + ($6 - $4); total += w; printf "  %-22s x%-3s %6d  (%.1f/s)\n", $1, $2, w, w / s} END {printf "  %-27s %6d  (%.1f/s)\n", "total", total, total / s}'
