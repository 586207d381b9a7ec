#!/usr/bin/env bash
# BEC's notify through the agent: `connector.notify` from the real bec_lib on a loopback
# redis-server → the request at a loopback Bot API.
#
# 1. Latency: N notifications at RATE per second, each with its own text (letters, not
#    digits: digits are folded into one dedup key), p50/p99/max from bec_lib's publish
#    to the request at the fake Bot API.
# 2. Burst: BURST notifications as fast as bec_lib publishes them, KINDS different texts:
#    time until the agent has counted them all, the agent's peak RSS, and the messages
#    that reached Telegram (one per kind; the rest are repeats, counted, not sent).
#
# 3. Direct sends: M messages at RATE per second, each
#    `bec.messaging.teams.new(text).send()` from a session (bec_lib's XADD to BEC's
#    message stream), p50/p99/max from before send() to the request at a loopback
#    Teams webhook.
#
# Needs redis-server and the venv with bec_lib that .ci/run makes (target/ci-venv, or
# PROTOWATCH_TEST_VENV).
# Usage: bash bench/bec.sh        (N, RATE, BURST, KINDS, M can be set in the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-300}
RATE=${RATE:-20}
BURST=${BURST:-10000}
KINDS=${KINDS:-20}
M=${M:-300}

venv=${PROTOWATCH_TEST_VENV:-$PWD/target/ci-venv}
bec_py=$venv/bin/python
[ -x "$bec_py" ] || { echo "no venv with bec_lib at $venv (bash .ci/run makes it)" >&2; exit 2; }
py=/usr/bin/python3; [ -x "$py" ] || py=python3
cargo build --release --locked -q
bin=$PWD/target/release/protowatch
work=$(mktemp -d)
agent=; tg=; keeper=; redis=; hook=
cleanup() {
  for p in $agent $tg $keeper $redis $hook; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port); tgport=$(free_port); rport=$(free_port); hookport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" > /dev/null &
redis=$!
# The fake ends when its stdin closes; the keeper holds it open (and nothing of ours).
exec {keep}< <(exec sleep 100000 2> /dev/null)
keeper=$!
"$py" bench/fake_telegram.py --port "$tgport" --log "$work/tg.log" <&"$keep" > /dev/null &
tg=$!
# A Teams webhook that notes when each request arrived (part 3).
"$py" - "$hookport" "$work/hook.log" <<'PY' &
import http.server, json, sys, time
port, log = int(sys.argv[1]), sys.argv[2]
out = open(log, "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        out.write(json.dumps({"at": time.time(), "text": body.decode("utf-8", "replace")}) + "\n")
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY
hook=$!
# Every message is news (no pace to wait for) in parts 1 and 3.
cat > "$work/config.json" <<JSON
{
  "instrument": "BENCH",
  "telegram": {"bot-id": "123456:BENCH-token", "channel-id": "-100", "api-url": "http://127.0.0.1:$tgport"},
  "webhook": {"scopes": {"teams": {"url": "http://127.0.0.1:$hookport/hook", "preset": "teams"}},
              "default_scope": "teams"},
  "throttle": {"per_minute": {"telegram": 10000, "webhook": 10000}},
  "api": {"listen": "127.0.0.1:$port"},
  "routes": {"new_scan": [{"service": "telegram"}], "alarm_major": [{"service": "telegram"}]},
  "bec": {"redis": "127.0.0.1:$rport", "publish_services": true}
}
JSON
"$bin" --config "$work/config.json" run 2> "$work/agent.log" &
agent=$!
for _ in $(seq 100); do [ -s "$work/.protowatch/api.addr" ] && break; sleep 0.1; done
for _ in $(seq 100); do
  curl -s "http://127.0.0.1:$port/healthz" | grep -q '"link":"up"' && break; sleep 0.1
done

"$bec_py" - "$rport" "$N" "$RATE" "$work/tg.log" <<'PY'
import os, sys, time, json
os.environ.setdefault("BEC_LOG_LEVEL", "ERROR")
from bec_lib.redis_connector import RedisConnector
rport, n, rate, log = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
connector = RedisConnector(f"127.0.0.1:{rport}")
word = lambda i: "".join(chr(97 + int(d)) for d in str(i))
sent = {}
for i in range(n):
    sent[i] = time.time()
    connector.notify("new_scan", f"bench {word(i)} end")
    time.sleep(1 / rate)
deadline = time.time() + 30
seen = {}
while time.time() < deadline and len(seen) < n:
    for line in open(log):
        rec = json.loads(line)
        for i in range(n):
            if i not in seen and f"bench {word(i)} end" in rec["text"]:
                seen[i] = rec["at"]
                break
    time.sleep(0.2)
lat = sorted((seen[i] - sent[i]) * 1000 for i in seen)
if not lat:
    sys.exit("no notification reached the fake Bot API")
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"latency: {len(lat)} of {n} notifications at {rate:g}/s: p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, max {lat[-1]:.1f} ms")
connector.shutdown(per_thread_timeout_s=1)
sys.stdout.flush()
os._exit(0)
PY

before=$(wc -l < "$work/tg.log")
"$bec_py" - "$rport" "$BURST" "$KINDS" "$port" "$(cat "$work/.protowatch/api-token")" <<'PY'
import os, sys, time, urllib.request
os.environ.setdefault("BEC_LOG_LEVEL", "ERROR")
from bec_lib.redis_connector import RedisConnector
rport, burst, kinds, port, token = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
connector = RedisConnector(f"127.0.0.1:{rport}")
word = lambda i: "".join(chr(97 + int(d)) for d in str(i))
def received():
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    for line in text.splitlines():
        if line.startswith("protowatch_bec_notifications_total "):
            return int(float(line.split()[1]))
    return 0
start_count = received()
t0 = time.time()
for i in range(burst):
    connector.notify("alarm_major", f"detector {word(i % kinds)} timeout after {i} ms")
published = time.time() - t0
while received() < start_count + burst and time.time() - t0 < 300:
    time.sleep(0.05)
took = time.time() - t0
print(f"burst: {burst} notifications ({kinds} kinds) published in {published:.2f} s, all received by the agent after {took:.2f} s ({burst / took:.0f}/s)")
connector.shutdown(per_thread_timeout_s=1)
sys.stdout.flush()
os._exit(0)
PY
sleep 3
token=$(cat "$work/.protowatch/api-token")
committed=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^protowatch_events_total\{event="alarm_major"/ {print $2}')
echo "burst: alarm_major events committed: $committed; messages at Telegram: $(( $(wc -l < "$work/tg.log") - before ))"
grep -E 'VmHWM|VmRSS' "/proc/$agent/status" | tr -s ' \t' ' ' | sed 's/^/agent /'

"$bec_py" - "$rport" "$M" "$RATE" "$work/hook.log" <<'PY'
import os, sys, time, json
os.environ.setdefault("BEC_LOG_LEVEL", "ERROR")
from types import SimpleNamespace
from bec_lib.redis_connector import RedisConnector
from bec_lib.messaging_services import MessagingContainer
rport, n, rate, log = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
connector = RedisConnector(f"127.0.0.1:{rport}")
bec = SimpleNamespace(messaging=MessagingContainer(connector))
end = time.time() + 10
while not bec.messaging.teams._enabled and time.time() < end:
    time.sleep(0.05)
word = lambda i: "".join(chr(97 + int(d)) for d in str(i))
sent = {}
for i in range(n):
    sent[i] = time.time()
    bec.messaging.teams.new(f"direct {word(i)} sent").send()
    time.sleep(1 / rate)
deadline = time.time() + 30
seen = {}
while time.time() < deadline and len(seen) < n:
    seen = {}
    for line in open(log):
        rec = json.loads(line)
        for i in range(n):
            if i not in seen and f"direct {word(i)} sent" in rec["text"]:
                seen[i] = rec["at"]
                break
    time.sleep(0.2)
lat = sorted((seen[i] - sent[i]) * 1000 for i in seen)
if not lat:
    print("direct sends: none reached the fake webhook", file=sys.stderr); sys.stdout.flush(); os._exit(1)
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print(f"direct sends: {len(lat)} of {n} bec.messaging.teams...send() at {rate:g}/s: send() -> webhook request p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, max {lat[-1]:.1f} ms")
connector.shutdown(per_thread_timeout_s=1)
sys.stdout.flush()
os._exit(0)
PY
