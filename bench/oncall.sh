#!/usr/bin/env bash
# The cost of escalation timers: N active major alarms (N distinct failures, default
# 10,000), each routed to a webhook and to the escalation policy `night` whose one step
# (after STEP_S seconds, default 60) tells a second webhook scope. Prints:
#   - the time the N alerts took to be recorded (lines appended at once);
#   - RSS and CPU of the agent at rest while the N timers wait (REST_S seconds);
#   - the time from the first step's due time to its first message at the webhook, and
#     how many step messages (digests of many alerts, paced) came within 60 s after it.
#
# Usage: bash bench/oncall.sh            (N, STEP_S, REST_S can be set in the environment)
#        PROTOWATCH_BIN=path/to/protowatch bash bench/oncall.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
STEP_S=${STEP_S:-60}
REST_S=${REST_S:-30}
py=/usr/bin/python3; [ -x "$py" ] || py=python3
if [ -z "${PROTOWATCH_BIN:-}" ]; then cargo build --release --locked -q; fi
bin=${PROTOWATCH_BIN:-$PWD/target/release/protowatch}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The webhook receiver: one line per request, with its time and path.
hook=$(free_port)
"$py" - "$hook" "$work/hook.log" <<'PY' &
import http.server, sys, time
port, log = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(log, "a") as f:
            f.write(f"{time.time():.3f} {self.path}\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
pids+=($!)
d=$work/agent; mkdir -p "$d/p"; : > "$d/p/run.log"
cat > "$d/config.json" <<JSON
{
  "instrument": "BENCH",
  "webhook": {"scopes": {"first": {"url": "http://127.0.0.1:$hook/first"},
                         "oncall": {"url": "http://127.0.0.1:$hook/oncall"}},
              "default_scope": "first"},
  "escalation": {"night": {"steps": [{"after": "${STEP_S}s", "to": [{"service": "webhook", "scope": "oncall"}]}]}},
  "routes": {"alarm_major": [{"service": "webhook", "scope": "first"}, {"escalate": "night"}]},
  "watch": [{"path": "p/*.log"}],
  "api": {"listen": "127.0.0.1:$(free_port)"}
}
JSON
"$bin" --config "$d/config.json" --log-level warn run 2>"$work/agent.log" &
agent=$!
pids+=($agent)
sleep 2
echo "== N=$N alerts, step after ${STEP_S} s; load: $(uptime | sed 's/.*load/load/')"
t0=$(date +%s.%N)
"$py" - "$d/p/run.log" "$N" <<'PY'
import string, sys, time
log, n = sys.argv[1], int(sys.argv[2])
stamp = time.strftime("%Y-%m-%d %H:%M:%S")
def name(i):
    s = ""
    for _ in range(4):
        s = string.ascii_lowercase[i % 26] + s
        i //= 26
    return s
with open(log, "a") as f:
    for i in range(n):
        f.write(f"{stamp} ERROR 1 [det{name(i)}] HV trip on channel {name(i)}\n")
PY
db=$d/.protowatch/protowatch.db
until [ "$("$py" -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from alerts where escalation is not null').fetchone()[0])" "$db" 2>/dev/null || echo 0)" -ge "$N" ]; do sleep 0.2; done
t1=$(date +%s.%N)
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
echo "recorded with their timers: $(calc "$t1 - $t0" 2) s"
sleep 5
ticks() { awk '{print $14+$15}' "/proc/$agent/stat"; }
c0=$(ticks); sleep "$REST_S"; c1=$(ticks)
hz=$(getconf CLK_TCK)
echo "at rest with $N timers waiting: CPU $(calc "($c1-$c0)*1000/$hz*60/$REST_S") ms a minute; RSS $(awk '/VmRSS/{print $2/1024" MB"}' "/proc/$agent/status")"
due=$(calc "$t0 + $STEP_S" 3)
while ! grep -q " /oncall" "$work/hook.log" 2>/dev/null; do
  if [ "$(calc "$(date +%s) > $due + 120" 0)" = 1 ]; then echo "no step message within 2 min of its time" >&2; exit 1; fi
  sleep 0.1
done
first=$(grep " /oncall" "$work/hook.log" | head -1 | cut -d' ' -f1)
echo "first step message: $(calc "($first - $due)*1000" 0) ms after its due time (lines written at t0; the alerts' creation is up to the recording time later)"
sleep 60
echo "step messages within 60 s: $(grep -c " /oncall" "$work/hook.log") (paced; each lists many alerts)"
echo "peak RSS: $(awk '/VmHWM/{print $2/1024" MB"}' "/proc/$agent/status")"
