#!/usr/bin/env bash
# Discovery at scale: a protocol folder of N files (default 1,000, 10,000 and 50,000),
# one `watch` glob over it. For each N it measures
#  - the walk alone: `protowatch check-config` (which expands every glob) with hyperfine,
#    minus the same command over an empty folder (process start and config load);
#  - the agent: how long its first scan takes (its "first scan done" log line), its
#    peak and current RSS, the file descriptors it holds, and the CPU it spends per
#    second once settled (one scan a second, `poll_interval_ms` 1000), over 30 s.
# Files get one INFO line each and the agent starts with `start: end`, as an agent
# installed beside years of protocols does.
#
# Usage: bash bench/discovery.sh   (COUNTS="1000 10000 50000", SETTLE_S=30; BIN=path runs
#        that binary instead of building this tree's)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=${COUNTS:-"1000 10000 50000"}
SETTLE_S=${SETTLE_S:-30}

py=/usr/bin/python3; [ -x "$py" ] || py=python3
if [ -n "${BIN:-}" ]; then bin=$BIN; else
  cargo build --release --locked -q
  bin=$PWD/target/release/protowatch
fi
work=$(mktemp -d)
agent=
cleanup() {
  [ -n "$agent" ] && { kill "$agent" 2>/dev/null || true; wait "$agent" 2>/dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

echo "machine: $(nproc) CPU, $(uname -r); load: $(uptime | sed 's/.*load/load/')"
for n in $COUNTS; do
  dir=$work/$n
  mkdir -p "$dir/p" "$dir/empty"
  "$py" - "$dir/p" "$n" <<'PY'
import sys, os
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"proto{i:06d}.log"), "w") as f:
        f.write(f"2026-11-20 14:03:12 INFO [sonix] protocol {i} opened\n")
PY
  port=$("$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  for which in p empty; do
    cat > "$dir/config-$which.json" <<JSON
{
  "instrument": "BENCH",
  "telegram": {"bot-id": "123456:BENCH-token", "channel-id": "-100", "api-url": "http://127.0.0.1:9"},
  "watch": [{"path": "$which/*.log", "max_files": 100000}],
  "api": {"listen": "127.0.0.1:$port"},
  "state_dir": "state-$which"
}
JSON
  done
  echo "== $n files"
  hyperfine -N --warmup 2 --runs 15 --export-json "$dir/walk.json" \
    "$bin --config $dir/config-p.json check-config" \
    "$bin --config $dir/config-empty.json check-config" > /dev/null 2>&1
  "$py" - "$dir/walk.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["results"]
full, empty = r[0]["median"], r[1]["median"]
print(f"walk (check-config median {full*1000:.1f} ms - empty folder {empty*1000:.1f} ms): {(full-empty)*1000:.1f} ms")
PY
  "$bin" --config "$dir/config-p.json" run 2> "$dir/agent.log" &
  agent=$!
  for _ in $(seq 600); do grep -q "first scan done" "$dir/agent.log" && break; sleep 0.1; done
  grep -o 'first scan done.*' "$dir/agent.log" | head -1
  sleep 3
  t0=$(awk '{print $14 + $15}' /proc/"$agent"/stat)
  sleep "$SETTLE_S"
  t1=$(awk '{print $14 + $15}' /proc/"$agent"/stat)
  hz=$(getconf CLK_TCK)
  echo "settled CPU: $(awk -v a="$t0" -v b="$t1" -v hz="$hz" -v s="$SETTLE_S" 'BEGIN{printf "%.1f ms per second", (b-a)/hz/s*1000}')"
  echo "peak RSS: $(awk '/^VmHWM/{print $2, $3}' /proc/"$agent"/status); RSS now: $(awk '/^VmRSS/{print $2, $3}' /proc/"$agent"/status)"
  echo "open file descriptors: $(ls /proc/"$agent"/fd | wc -l)"
  kill "$agent"; wait "$agent" 2>/dev/null || true; agent=
  rm -rf "$dir"
done
