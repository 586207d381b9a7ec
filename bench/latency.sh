#!/usr/bin/env bash
# Append-to-delivery latency: a writer appends RATE error lines a second for SECONDS to a
# followed protocol, each with its sequence number and the time it was written; the agent
# delivers each to a fake Bot API on loopback (bench/fake_telegram.py), which stamps its
# arrival. Throttling and the pace are off, so every line is one message (or a few lines
# in one, if they queue up: each is counted). Reports p50, p99 and max of arrival minus
# write time, in notify mode and in poll mode (POLL_MS).
#
# Usage: bash bench/latency.sh       (RATE, SECONDS_, POLL_MS can be set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-20}
SECONDS_=${SECONDS_:-60}
POLL_MS=${POLL_MS:-250}

py=/usr/bin/python3; [ -x "$py" ] || py=python3
cargo build --release --locked -q
bin=$PWD/target/release/protowatch
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The fake Bot API stops when its stdin closes; a fifo held open by this shell keeps it up.
mkfifo "$work/tg.in"
"$py" bench/fake_telegram.py --log "$work/tg.log" < "$work/tg.in" > "$work/tg.out" 2>&1 &
pids+=($!)
exec {tg_fd}>"$work/tg.in"
for _ in $(seq 100); do grep -q READY "$work/tg.out" 2>/dev/null && break; sleep 0.1; done
tg_port=$(awk '/READY/{print $2}' "$work/tg.out")

run_mode() { # mode, extra watch members
  local mode=$1 extra=$2 d=$work/$1
  mkdir -p "$d/p"; : > "$d/p/run.log"; : > "$work/tg.log"
  cat > "$d/config.json" <<JSON
{
  "instrument": "BENCH",
  "telegram": {"bot-id": "123456:BENCH-token", "channel-id": "-100", "api-url": "http://127.0.0.1:$tg_port"},
  "watch": [{"path": "p/*.log", "mode": "$mode"$extra}],
  "throttle": {"repeat_interval": 0, "per_minute": {"mail": 10000, "telegram": 10000}},
  "api": {"listen": "127.0.0.1:$(free_port)"}
}
JSON
  "$bin" --config "$d/config.json" --log-level warn run 2> "$d/agent.err" &
  local agent=$!; pids+=($agent)
  sleep 2
  "$py" - "$d/p/run.log" "$RATE" "$SECONDS_" <<'PY'
import os, sys, time
path, rate, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
start = time.time()
for i in range(rate * seconds):
    # Steady, not bursty: each line at its own slot.
    slot = start + i / rate
    delay = slot - time.time()
    if delay > 0:
        time.sleep(delay)
    os.write(fd, f"2026-11-21 14:03:12 ERROR [bench] seq {i} written {time.time():.6f}\n".encode())
os.close(fd)
PY
  local n=$((RATE * SECONDS_))
  for _ in $(seq 100); do
    [ "$(grep -o 'seq [0-9]*' "$work/tg.log" | sort -u | wc -l)" -ge "$n" ] && break
    sleep 0.1
  done
  kill -TERM "$agent"; wait "$agent" || true
  "$py" - "$work/tg.log" "$n" "$mode" <<'PY'
import json, re, sys
path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
lat = {}
for line in open(path):
    r = json.loads(line)
    for seq, written in re.findall(r"seq (\d+) written (\d+\.\d+)", r.get("text") or ""):
        lat.setdefault(int(seq), (r["at"] - float(written)) * 1000)
v = sorted(lat.values())
pct = lambda p: v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
print(f"{mode:>6}: {len(v)}/{n} delivered; append-to-delivery p50 {pct(50):.1f} ms, "
      f"p99 {pct(99):.1f} ms, max {v[-1]:.1f} ms")
PY
}

echo "== load: $(uptime)"
run_mode notify ""
run_mode poll ", \"poll_interval_ms\": $POLL_MS"
echo "== load: $(uptime)"
