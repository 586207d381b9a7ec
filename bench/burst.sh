#!/usr/bin/env bash
# The burst and the drain of issue "alerts, routes and a durable outbox", measured on the
# release binary against a local SMTP server (Debian's python3-aiosmtpd) and a fake Bot
# API on loopback:
#
#   burst: LINES (100,000) error lines appended at once to a followed protocol, from
#          KEYS (2,000) different failures; reports the messages each destination got,
#          the events they account for, the time until the last one, and the agent's
#          peak RSS (/usr/bin/time -v).
#   drain: ROWS (10,000) deliveries queued while the mail server is down, then the time
#          from the server's start until the outbox is empty with the default pace (one
#          digest); and UNPACED (2,000) with the pace and repeat counting turned off, one
#          mail a row.
#
# Usage: bash bench/burst.sh            (LINES, KEYS, ROWS can be set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-100000}
KEYS=${KEYS:-2000}
ROWS=${ROWS:-10000}
UNPACED=${UNPACED:-2000}

# Debian's Python, where python3-aiosmtpd is installed (not one a version manager puts first).
py=/usr/bin/python3; [ -x "$py" ] || py=python3
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
"$py" -c 'import aiosmtpd' 2>/dev/null || { echo "needs python3-aiosmtpd (apt-get install python3-aiosmtpd)" >&2; exit 2; }
cargo build --release --locked -q
bin=$PWD/target/release/protowatch
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a server that prints "READY <port>" and keeps running while its stdin is open.
start_server() { # name, command...
  local name=$1; shift
  mkfifo "$work/$name.in"
  "$@" < "$work/$name.in" > "$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  exec {fd}>"$work/$name.in"
  for _ in $(seq 100); do grep -q READY "$work/$name.out" 2>/dev/null && return; sleep 0.1; done
  echo "$name did not start: $(cat "$work/$name.err")" >&2; exit 1
}

# A protocol of $1 lines from $2 failures, as the instrument writes them (seeded).
gen_lines() {
  "$py" - "$1" "$2" <<'PY'
import random, sys
n, keys = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(42)
words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(6)) for _ in range(keys)]
out = sys.stdout
for i in range(n):
    out.write(f"2026-11-21 14:03:{i % 60:02d} ERROR [detector] module {words[rnd.randrange(keys)]} failed after {rnd.randrange(10000)} ms\n")
PY
}

write_config() { # dir, smtp port, telegram port, extra JSON members
  cat > "$1/config.json" <<JSON
{
  "instrument": "BENCH",
  "mail": {"server": "127.0.0.1", "port": $2, "tls": "none", "recipients": ["ops@example.org"]},
  "telegram": {"bot-id": "123456:BENCH-token", "channel-id": "-100", "api-url": "http://127.0.0.1:$3"},
  "watch": [{"path": "p/*.log", "poll_interval_ms": 100}]$4
}
JSON
}

count() { local n; n=$(grep -c "$1" "$2" 2>/dev/null || true); echo "${n:-0}"; }

outbox_empty() { [ -z "$("$bin" --config "$1/config.json" outbox list --json 2>/dev/null)" ]; }

echo "== burst: $LINES lines from $KEYS failures"
start_server smtp "$py" tests/support/smtp_server.py
smtp_port=$(awk '/READY/{print $2}' "$work/smtp.out")
start_server tg "$py" bench/fake_telegram.py --log "$work/tg.log"
tg_port=$(awk '/READY/{print $2}' "$work/tg.out")
d=$work/burst; mkdir -p "$d/p"
# Repeats are counted for 30 s instead of 10 min, so that their summaries come within
# the run and every event can be seen accounted for.
write_config "$d" "$smtp_port" "$tg_port" ', "throttle": {"repeat_interval": "30s"}'
gen_lines "$LINES" "$KEYS" > "$work/lines.log"
/usr/bin/time -v "$bin" --config "$d/config.json" --log-level warn run 2> "$work/burst.time" &
agent=$!; pids+=($agent)
sleep 1
t0=$(date +%s.%N)
cat "$work/lines.log" >> "$d/p/run.log"
count_events() { "$py" - "$@" <<'PY'
import json, re, sys
total = 0
for line in open(sys.argv[1]):
    try: r = json.loads(line)
    except ValueError: continue
    text = r.get("text") or ""
    if "parts" in r:
        text = next((p["text"] for p in r["parts"] if p["content_type"] == "text/plain"), "")
    m = re.search(r"^\D{0,12}([\d,]+) events", text)
    if m:
        total += int(m.group(1).replace(",", ""))
        continue
    m = re.search(r"repeated ([\d,]+) times", text)
    total += int(m.group(1).replace(",", "")) if m else 1
print(total)
PY
}
# Until every line is accounted for by both services (at most 3 minutes).
for _ in $(seq 180); do
  [ -s "$work/tg.log" ] && [ "$(count_events "$work/tg.log")" -ge "$LINES" ] \
    && [ "$(count_events "$work/smtp.out")" -ge "$LINES" ] && break
  sleep 1
done
t_end=$("$py" -c "import json,sys; print(max(json.loads(l)['at'] for l in open('$work/tg.log')))")
# SIGTERM to the agent itself (time(1) does not pass signals on); time then reports.
pkill -TERM -P "$agent" || true; wait "$agent" || true
tg_msgs=$(count . "$work/tg.log")
mail_msgs=$(count '"subject"' "$work/smtp.out")
echo "telegram: $tg_msgs messages accounting for $(count_events "$work/tg.log") events; last $("$py" -c "print(round($t_end - $t0, 1))") s after the burst (repeat summaries after 30 s included)"
echo "mail:     $mail_msgs messages accounting for $(count_events "$work/smtp.out") events"
echo "agent peak RSS: $(awk -F': ' '/Maximum resident/{print $2}' "$work/burst.time") KiB"

drain() { # label, rows, extra config
  local label=$1 rows=$2 extra=$3
  local port; port=$(free_port)
  local dd=$work/drain-$label; mkdir -p "$dd/p"
  write_config "$dd" "$port" "$tg_port" "$extra"
  "$bin" --config "$dd/config.json" --log-level warn run 2>/dev/null &
  local a=$!; pids+=($a)
  sleep 1
  "$py" - "$rows" >> "$dd/p/run.log" <<'PY'
import sys
for i in range(int(sys.argv[1])):
    # Letters only: every row a different alert.
    w = "".join(chr(97 + (i // 26**k) % 26) for k in range(4))
    print(f"ERROR [queue] row {w} waiting")
PY
  sleep 3
  local queued; queued=$("$bin" --config "$dd/config.json" outbox list --json | count '"mail:default"' -)
  local s0; s0=$(date +%s.%N)
  start_server "drain-$label-smtp" "$py" tests/support/smtp_server.py --port "$port"
  until [ "$("$bin" --config "$dd/config.json" outbox list --json | count '"mail:default"' -)" = 0 ]; do sleep 0.2; done
  local s1; s1=$(date +%s.%N)
  echo "drain ($label): $queued queued mail rows delivered in $("$py" -c "print(round($s1 - $s0, 2))") s as $(count '"subject"' "$work/drain-$label-smtp.out") mails"
  kill -TERM "$a" 2>/dev/null || true; wait "$a" 2>/dev/null || true
}
echo "== drain: rows queued during a mail outage, from the server's start (the retry backoff included)"
drain paced "$ROWS" ""
# One mail per row: the pace above the rows queued, counting no repeats.
drain unpaced "$UNPACED" ', "throttle": {"repeat_interval": 0, "per_minute": {"mail": 10000, "telegram": 10000}}'
