#!/usr/bin/env bash
# A flood: LINES (1,000,000) error lines from KEYS (2,000) different failures appended at
# once to a followed protocol, with the default throttling and pace, the agent
# delivering to Debian's aiosmtpd and a fake Bot API on loopback. Reports:
#   - the time until every line is committed: the alerts' times_seen in the store add
#     up to LINES (read with python3's sqlite3 while the agent runs, WAL mode);
#   - the agent's peak RSS (/usr/bin/time -v);
#   - the messages each destination got by SETTLE seconds after that.
#
# Usage: bash bench/flood.sh         (LINES, KEYS, SETTLE can be set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-1000000}
KEYS=${KEYS:-2000}
SETTLE=${SETTLE:-10}

py=/usr/bin/python3; [ -x "$py" ] || py=python3
need=()
command -v /usr/bin/time >/dev/null || need+=(time)
"$py" -c 'import aiosmtpd' 2>/dev/null || need+=(python3-aiosmtpd)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --locked -q
# PROTOWATCH_BIN: another build to compare (say, of the commit before a change).
bin=${PROTOWATCH_BIN:-$PWD/target/release/protowatch}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do pkill -TERM -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a server that prints "READY <port>" and runs while the fifo on its stdin is open.
start_server() { # name, command...
  local name=$1; shift
  mkfifo "$work/$name.in"
  "$@" < "$work/$name.in" > "$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  exec {fd}>"$work/$name.in"
  for _ in $(seq 100); do grep -q READY "$work/$name.out" 2>/dev/null && return; sleep 0.1; done
  echo "$name did not start: $(cat "$work/$name.err")" >&2; exit 1
}

start_server smtp "$py" tests/support/smtp_server.py
smtp_port=$(awk '/READY/{print $2}' "$work/smtp.out")
start_server tg "$py" bench/fake_telegram.py --log "$work/tg.log"
tg_port=$(awk '/READY/{print $2}' "$work/tg.out")

d=$work/agent; mkdir -p "$d/p"; : > "$d/p/run.log"
cat > "$d/config.json" <<JSON
{
  "instrument": "BENCH",
  "mail": {"server": "127.0.0.1", "port": $smtp_port, "tls": "none", "recipients": ["ops@example.org"]},
  "telegram": {"bot-id": "123456:BENCH-token", "channel-id": "-100", "api-url": "http://127.0.0.1:$tg_port"},
  "watch": [{"path": "p/*.log"}],
  "api": {"listen": "127.0.0.1:$(free_port)"}
}
JSON
# The same seeded lines as bench/burst.sh.
"$py" - "$LINES" "$KEYS" > "$work/lines.log" <<'PY'
import random, sys
n, keys = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(42)
words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) for _ in range(keys)]
out = sys.stdout
for i in range(n):
    out.write(f"2026-11-21 14:03:{i % 60:02d} ERROR [detector] module {words[rnd.randrange(keys)]} failed after {rnd.randrange(10000)} ms\n")
PY

/usr/bin/time -v "$bin" --config "$d/config.json" --log-level warn run 2> "$work/agent.time" &
agent=$!; pids+=($agent)
for _ in $(seq 100); do [ -s "$d/.protowatch/protowatch.db" ] && break; sleep 0.1; done
sleep 1
echo "== load before: $(uptime | sed 's/.*load/load/')"
# Appends, then waits until the store has counted every line (at most 5 minutes).
"$py" - "$work/lines.log" "$d/p/run.log" "$d/.protowatch/protowatch.db" "$LINES" <<'PY'
import shutil, sqlite3, sys, time
src, dst, db, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
t0 = time.time()
with open(src, "rb") as f, open(dst, "ab") as g:
    shutil.copyfileobj(f, g, 1 << 20)
written = time.time() - t0
conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
seen = 0
while time.time() - t0 < 300:
    try:
        seen = conn.execute("SELECT COALESCE(SUM(times_seen), 0) FROM alerts").fetchone()[0]
    except sqlite3.OperationalError:
        pass
    if seen >= n:
        break
    time.sleep(0.05)
print(f"{n:,} lines appended in {written:.2f} s; all committed {time.time() - t0:.2f} s after the append began"
      if seen >= n else f"only {seen:,} of {n:,} lines committed after 300 s")
PY
sleep "$SETTLE"
echo "== load after: $(uptime | sed 's/.*load/load/')"
pkill -TERM -P "$agent" || true; wait "$agent" || true
echo "telegram: $(grep -c . "$work/tg.log" || true) messages; mail: $(grep -c '"subject"' "$work/smtp.out" || true) messages (within ${SETTLE} s after the commit)"
echo "agent peak RSS: $(awk -F': ' '/Maximum resident/{print $2}' "$work/agent.time") KiB; CPU user $(awk -F': ' '/User time/{print $2}' "$work/agent.time") s, sys $(awk -F': ' '/System time/{print $2}' "$work/agent.time") s"
